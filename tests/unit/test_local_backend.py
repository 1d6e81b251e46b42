"""LocalBackend end to end with the real runner: languages, budget, capacity, broken runner, no cgroups."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from functions.backends.local.backend import LocalBackend, create_backend
from functions.core.errors import CapacityExhaustedError, DeadlineExceededError
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.protocol import RunnerTask
from functions.core.results import decode_text
from functions.core.spec import build_task
from functions.core.verdicts import Verdict
from functions.settings import DEFAULT_RUNNERS_DIR, Settings
from functions.wiring import sync_policy

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]

MakeBackend = Callable[..., LocalBackend]
# The service's own limits, with shorter defaults and smaller caps so the tests stay quick.
POLICY = replace(
    sync_policy(Settings()),
    default_timeout_s=5.0,
    total_budget_s=20.0,
    default_memory_limit_mb=128,
    max_stdin_bytes=65536,
    max_test_cases=8,
    max_args=8,
    max_arg_bytes=256,
    max_processes=32,
    max_file_size_bytes=1 << 20,
)
HELLO = {
    "python": 'print("Hello, World!")',
    "javascript": 'console.log("Hello, World!")',
    "cpp": '#include <iostream>\nint main() { std::cout << "Hello, World!" << std::endl; }',
    "java": 'public class Hi { public static void main(String[] a) { System.out.println("Hello, World!"); } }',
}


def _task(language: str, code: str, **fields: object) -> RunnerTask:
    request = ExecuteRequest.model_validate(
        {"language": language, "code": code, "encoding": "text", **fields}
    )
    return build_task(request, load_registry(DEFAULT_RUNNERS_DIR), POLICY)


def _cleanup(backend: LocalBackend) -> None:
    if backend.config.cgroups is not None:
        for parent in backend.config.cgroups.parents:
            assert [child.name for child in parent.iterdir() if child.is_dir()] == []
            parent.rmdir()


@pytest.fixture
def make_backend() -> Iterator[MakeBackend]:
    backends: list[LocalBackend] = []

    def make(**overrides: object) -> LocalBackend:
        root = f"code-exec-test-{uuid.uuid4().hex[:8]}"
        backend = create_backend(Settings(local_cgroup_root=root, **overrides))  # type: ignore[arg-type]
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        _cleanup(backend)


@pytest.mark.parametrize("language", sorted(HELLO), ids=sorted(HELLO))
@pytest.mark.parametrize("use_cgroups", [True, False], ids=["cgroups", "rlimits-only"])
def test_hello_world(make_backend: MakeBackend, language: str, use_cgroups: bool) -> None:
    backend = make_backend(local_use_cgroups=use_cgroups)
    report = backend.run(_task(language, HELLO[language]), budget_s=30.0)
    assert report.cases[0].verdict is Verdict.ACCEPTED, report
    assert decode_text(report.cases[0].stdout_b64) == "Hello, World!\n"


def test_budget_shorter_than_the_run_raises_deadline(make_backend: MakeBackend) -> None:
    # Given a program that loops for its whole 10 s timeout and a 1 s budget
    backend = make_backend()
    task = _task("python", "while True: pass", timeout=10)
    started_s = time.monotonic()
    # When / Then
    with pytest.raises(DeadlineExceededError) as caught:
        backend.run(task, budget_s=1.0)
    assert caught.value.execution_id == task.execution_id
    assert time.monotonic() - started_s < 1.0 + 5.0  # generous: the kill is immediate


def test_full_pool_answers_capacity_exhausted(make_backend: MakeBackend) -> None:
    backend = make_backend(local_max_concurrency=1, local_queue_wait_s=0.0)
    with backend.pool.slot(), pytest.raises(CapacityExhaustedError) as caught:
        backend.run(_task("python", "print(1)"), budget_s=30.0)
    assert caught.value.retry_after_s is not None


def test_broken_runner_is_an_internal_error_report(make_backend: MakeBackend) -> None:
    # Given a runners dir whose runner crashes before writing a report
    base = Path(tempfile.mkdtemp(prefix="code-exec-broken-"))
    try:
        base.chmod(0o755)
        (base / "runner").mkdir()
        (base / "runner" / "runner.py").write_text("raise SystemExit(3)\n")
        backend = make_backend(runners_dir=base)
        # When
        report = backend.run(_task("python", "print(1)"), budget_s=30.0)
    finally:
        shutil.rmtree(base)
    # Then: a report (not an exception) naming the failure
    assert report.internal_error is not None
    assert "exit code 3" in report.internal_error
