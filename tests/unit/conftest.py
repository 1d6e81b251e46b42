"""Run the real runner program as a subprocess (no sandbox): the interpreter the sandbox uses, an empty env."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.core.languages import LanguageSpec, load_registry
from functions.core.protocol import RunnerReport, RunnerTask, TaskCase, TaskLimits

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNERS_DIR = REPO_ROOT / "runners"
RUNNER = RUNNERS_DIR / "runner" / "runner.py"
SYSTEM_PYTHON = Path("/usr/bin/python3")
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
RUNNER_DEADLINE_S = 60  # a hung runner fails the test instead of hanging the suite

# The toolchain each language needs on the runner's PATH; a test for a missing one is skipped.
TOOLCHAINS = {"python": "python3", "javascript": "node", "cpp": "g++", "java": "javac"}


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def language(name: str) -> LanguageSpec:
    return load_registry(RUNNERS_DIR).get(name)


def needs_toolchain(name: str) -> pytest.MarkDecorator:
    tool = TOOLCHAINS[name]
    missing = shutil.which(tool, path=CHILD_PATH) is None or not SYSTEM_PYTHON.exists()
    return pytest.mark.skipif(missing, reason=f"{tool} or {SYSTEM_PYTHON} is not installed")


def make_task(
    language_name: str,
    source: str,
    *,
    cases: Sequence[TaskCase] | None = None,
    args: Sequence[str] = (),
    **limits: Any,
) -> RunnerTask:
    defaults: dict[str, Any] = {
        "timeout_s": 5.0,
        "compile_timeout_s": 30.0,
        "total_budget_s": 40.0,
        "memory_limit_mb": 256,
        "output_limit_bytes": 64 * 1024,
        "max_processes": 64,
        "max_file_size_bytes": 16 * 1024 * 1024,
    }
    return RunnerTask(
        execution_id="test",
        language=language(language_name),
        source_b64=b64(source),
        cases=tuple(cases or (TaskCase(),)),
        args=tuple(args),
        limits=TaskLimits(**{**defaults, **limits}),
    )


@dataclass(frozen=True)
class RunnerOutcome:
    report: RunnerReport
    raw: dict[str, Any]
    returncode: int


def run_runner_raw(stdin: bytes, env: Mapping[str, str] | None = None) -> RunnerOutcome:
    completed = subprocess.run(
        [str(SYSTEM_PYTHON), "-B", str(RUNNER)],
        input=stdin,
        env=dict(env or {}),
        capture_output=True,
        timeout=RUNNER_DEADLINE_S,
        check=False,
    )
    assert completed.stderr == b"", completed.stderr.decode(errors="replace")
    raw = json.loads(completed.stdout)
    return RunnerOutcome(RunnerReport.model_validate(raw), raw, completed.returncode)


@pytest.fixture
def run_task() -> Callable[[RunnerTask], RunnerReport]:
    """Give the runner one task on stdin with an empty environment; return the validated report."""

    def run(task: RunnerTask) -> RunnerReport:
        outcome = run_runner_raw(task.model_dump_json().encode())
        assert outcome.returncode == 0
        return outcome.report

    return run
