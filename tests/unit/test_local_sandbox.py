"""run_runner_sandboxed with small stand-in runners: stdin/stdout plumbing, bounds, kills, cgroups."""

from __future__ import annotations

import shutil
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from functions.backends.local.sandbox import SandboxConfig, SandboxOutcome, config_from_settings
from functions.backends.local.sandbox import run_runner_sandboxed as run_sandboxed
from functions.settings import Settings
from tests.unit.conftest import language

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]

LANGUAGE = language("python")  # the spec in runners/python/language.json


Runner = Callable[..., SandboxOutcome]


@pytest.fixture
def sandbox() -> Iterator[Callable[[str], tuple[SandboxConfig, Runner]]]:
    """Build a config whose runner.py is the given stand-in, with its own cgroup root (removed after)."""
    configs: list[SandboxConfig] = []
    # Not pytest's tmp_path (mode 0700): bwrap may run as an unprivileged uid that must read the runner.
    base = Path(tempfile.mkdtemp(prefix="code-exec-standin-"))
    base.chmod(0o755)

    def make(runner_source: str) -> tuple[SandboxConfig, Runner]:
        runners_dir = base / f"runners-{len(configs)}"
        (runners_dir / "runner").mkdir(parents=True)
        (runners_dir / "runner" / "runner.py").write_text(textwrap.dedent(runner_source))
        settings = Settings(
            runners_dir=runners_dir, local_cgroup_root=f"code-exec-test-{uuid.uuid4().hex[:8]}"
        )
        config = config_from_settings(settings)
        configs.append(config)

        def run(**overrides: object) -> SandboxOutcome:
            arguments: dict[str, object] = {
                "language": LANGUAGE,
                "runner_env": None,
                "stdin": None,
                "memory_limit_mb": 64,
                "max_processes": 16,
                "wall_timeout_s": 20.0,
                "config": config,
            }
            arguments.update(overrides)
            return run_sandboxed(**arguments)  # type: ignore[arg-type]

        return config, run

    yield make
    shutil.rmtree(base)
    for config in configs:
        if config.cgroups is not None:
            for parent in config.cgroups.parents:
                # Then no run cgroup was left behind
                assert [child.name for child in parent.iterdir() if child.is_dir()] == []
                parent.rmdir()


def test_large_stdin_round_trips(sandbox: Callable[[str], tuple[SandboxConfig, Runner]]) -> None:
    # Given a runner that echoes its stdin and 1 MiB of input (more than a pipe buffer)
    _, run = sandbox("import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())")
    payload = bytes(range(256)) * 4096
    # When
    outcome = run(stdin=payload)
    # Then
    assert outcome.exit_code == 0
    assert outcome.stdout == payload


def test_runner_env_passes_and_host_env_does_not(
    sandbox: Callable[[str], tuple[SandboxConfig, Runner]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXEC_SECRET_CANARY", "canary-7f3a")
    _, run = sandbox("import json, os; print(json.dumps(dict(os.environ)))")
    outcome = run(runner_env={"RUNNER_TASK_CHUNKS": "1", "RUNNER_TASK_0": "e30="})
    assert b"canary-7f3a" not in outcome.stdout
    assert b'"RUNNER_TASK_0": "e30="' in outcome.stdout


def test_wall_timeout_kills_the_sandbox(sandbox: Callable[[str], tuple[SandboxConfig, Runner]]) -> None:
    _, run = sandbox("import time; time.sleep(1000)")
    started_s = time.monotonic()
    outcome = run(wall_timeout_s=0.5)
    assert outcome.timed_out
    assert outcome.exit_code != 0
    assert time.monotonic() - started_s < 10  # generous: the kill is immediate


def test_cancel_stops_the_run(sandbox: Callable[[str], tuple[SandboxConfig, Runner]]) -> None:
    import threading

    _, run = sandbox("import time; time.sleep(1000)")
    cancel = threading.Event()
    cancel.set()
    outcome = run(cancel=cancel)
    assert outcome.cancelled
    assert not outcome.timed_out


def test_report_size_is_bounded(sandbox: Callable[[str], tuple[SandboxConfig, Runner]]) -> None:
    config, run = sandbox("import sys\nwhile True: sys.stdout.write('x' * 65536)")
    outcome = run(config=replace(config, report_max_bytes=1024 * 1024))
    assert outcome.stdout_overflow
    assert len(outcome.stdout) == 1024 * 1024


def test_memory_cgroup_kills_and_reports_oom(sandbox: Callable[[str], tuple[SandboxConfig, Runner]]) -> None:
    config, run = sandbox("x = bytearray(400 * 1024 * 1024); print(len(x))")
    if config.cgroups is None:
        pytest.skip("no cgroups on this host")
    outcome = run(memory_limit_mb=32)
    assert outcome.oom_killed
    assert outcome.exit_code == 137
    assert outcome.cgroup_used
    assert outcome.peak_memory_kb > 32 * 1024


def test_pids_cgroup_limits_processes(sandbox: Callable[[str], tuple[SandboxConfig, Runner]]) -> None:
    config, run = sandbox(
        """
        import os, time
        children = 0
        for _ in range(500):
            try:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                children += 1
            except OSError:
                break
        print(children)
        """
    )
    if config.cgroups is None:
        pytest.skip("no cgroups on this host")
    outcome = run(max_processes=10)
    # Then forks stop near max_processes + the runner's allowance, far below 500
    assert int(outcome.stdout) < 10 + config.runner_pids
