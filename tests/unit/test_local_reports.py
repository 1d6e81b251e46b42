"""What the sandbox saw -> the report: OOM, deadline, missing or invalid report."""

from __future__ import annotations

from dataclasses import replace

import pytest

from functions.backends.local.reports import interpret_outcome
from functions.backends.local.sandbox import SandboxOutcome
from functions.core.errors import DeadlineExceededError
from functions.core.protocol import CaseReport, RunnerReport, RunnerTask, TaskCase, TaskLimits
from functions.core.verdicts import Verdict
from tests.unit.conftest import language

LANGUAGE = language("python")  # the spec in runners/python/language.json

TASK = RunnerTask(
    execution_id="exec-1",
    language=LANGUAGE,
    source_b64="cHJpbnQoMSk=",
    cases=(TaskCase(),),
    limits=TaskLimits(
        timeout_s=1,
        compile_timeout_s=5,
        total_budget_s=5,
        memory_limit_mb=64,
        output_limit_bytes=1024,
        max_processes=8,
        max_file_size_bytes=1024,
    ),
)
BASE = SandboxOutcome(
    stdout=b"", stderr=b"", exit_code=0, oom_killed=False, timed_out=False, peak_memory_kb=5
)


def _report(verdict: Verdict, signal: str | None) -> bytes:
    case = CaseReport(verdict=verdict, exit_code=137 if signal else 0, signal=signal)
    return RunnerReport(language_version="3.11.2", cases=[case]).model_dump_json().encode()


@pytest.mark.parametrize(
    ("outcome", "verdict", "exit_code"),
    [
        (replace(BASE, stdout=_report(Verdict.ACCEPTED, None)), Verdict.ACCEPTED, 0),
        (
            replace(BASE, stdout=_report(Verdict.RUNTIME_ERROR, "SIGKILL"), oom_killed=True),
            Verdict.MEMORY_LIMIT_EXCEEDED,
            137,
        ),
        (
            replace(BASE, stdout=_report(Verdict.TIME_LIMIT_EXCEEDED, "SIGKILL"), oom_killed=True),
            Verdict.TIME_LIMIT_EXCEEDED,
            137,
        ),
        (
            replace(BASE, stdout=_report(Verdict.RUNTIME_ERROR, "SIGSEGV"), oom_killed=True),
            Verdict.RUNTIME_ERROR,
            137,
        ),
        (replace(BASE, exit_code=137, oom_killed=True), Verdict.MEMORY_LIMIT_EXCEEDED, 137),
        (replace(BASE, exit_code=137, timed_out=True), Verdict.TIME_LIMIT_EXCEEDED, 124),
    ],
    ids=["accepted", "oom-sigkill", "tle-stays", "segv-stays", "oom-no-report", "task-timeout"],
)
def test_case_verdicts(outcome: SandboxOutcome, verdict: Verdict, exit_code: int) -> None:
    report = interpret_outcome(TASK, outcome, deadline_cut=False)
    assert report.internal_error is None
    assert report.cases[0].verdict is verdict
    assert report.cases[0].exit_code == exit_code


@pytest.mark.parametrize(
    "outcome",
    [
        replace(BASE, stdout=b"", exit_code=1),
        replace(BASE, stdout=b"{not json", exit_code=0),
        replace(BASE, stdout=b'{"cases": "nope"}'),
        replace(BASE, stdout=_report(Verdict.ACCEPTED, None), stdout_overflow=True),
    ],
    ids=["empty", "invalid-json", "wrong-shape", "overflow"],
)
def test_missing_or_invalid_report_is_internal_error(outcome: SandboxOutcome) -> None:
    report = interpret_outcome(TASK, outcome, deadline_cut=False)
    assert report.internal_error is not None
    assert "exit code" in report.internal_error


@pytest.mark.parametrize(
    "outcome", [replace(BASE, timed_out=True), replace(BASE, cancelled=True)], ids=["budget", "cancelled"]
)
def test_deadline_raises_with_execution_id(outcome: SandboxOutcome) -> None:
    with pytest.raises(DeadlineExceededError) as caught:
        interpret_outcome(TASK, outcome, deadline_cut=True)
    assert caught.value.execution_id == "exec-1"
