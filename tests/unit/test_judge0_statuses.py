"""Our verdicts as Judge0's statuses: the table, the messages, and exit code / signal as Judge0 fills them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from functions.core.judge0.statuses import (
    DESCRIPTIONS,
    STATUS_BY_VERDICT,
    Outcome,
    Status,
    outcome_of,
    signal_number,
    status_of,
)
from functions.core.models import ExecuteResponse
from functions.core.verdicts import Verdict

README = Path(__file__).resolve().parents[2] / "README.md"


def finished(
    verdict: Verdict, *, exit_code: int | None = 0, signal: str | None = None, **fields: object
) -> ExecuteResponse:
    return ExecuteResponse.model_validate(
        {
            "status": "success" if verdict is Verdict.ACCEPTED else "failed",
            "stdout": "",
            "stderr": "",
            "execution_time": 0.2,
            "exit_code": exit_code,
            "signal": signal,
            "verdict": verdict,
            "execution_id": "0" * 32,
            "language": "python",
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (finished(Verdict.ACCEPTED), Outcome(Status.ACCEPTED, None, 0, None)),
        (finished(Verdict.WRONG_ANSWER), Outcome(Status.WRONG_ANSWER, None, 0, None)),
        (finished(Verdict.TIME_LIMIT_EXCEEDED, exit_code=124), Outcome(Status.TIME_LIMIT_EXCEEDED, "Time limit exceeded", 0, None)),
        (finished(Verdict.COMPILATION_ERROR, exit_code=1, compile_output="e"), Outcome(Status.COMPILATION_ERROR, None, None, None)),
        (finished(Verdict.RUNTIME_ERROR, exit_code=3), Outcome(Status.RUNTIME_ERROR_NZEC, "Exited with error status 3", 3, None)),
        (finished(Verdict.RUNTIME_ERROR, exit_code=139, signal="SIGSEGV"), Outcome(Status.RUNTIME_ERROR_SIGSEGV, "Caught fatal signal 11", 0, 11)),
        (finished(Verdict.RUNTIME_ERROR, exit_code=136, signal="SIGFPE"), Outcome(Status.RUNTIME_ERROR_SIGFPE, "Caught fatal signal 8", 0, 8)),
        (finished(Verdict.RUNTIME_ERROR, exit_code=134, signal="SIGABRT"), Outcome(Status.RUNTIME_ERROR_SIGABRT, "Caught fatal signal 6", 0, 6)),
        (finished(Verdict.RUNTIME_ERROR, exit_code=137, signal="SIGKILL"), Outcome(Status.RUNTIME_ERROR_OTHER, "Caught fatal signal 9", 0, 9)),
        (finished(Verdict.OUTPUT_LIMIT_EXCEEDED, exit_code=153, signal="SIGXFSZ"), Outcome(Status.RUNTIME_ERROR_SIGXFSZ, "Caught fatal signal 25", 0, 25)),
        (finished(Verdict.MEMORY_LIMIT_EXCEEDED, exit_code=1), Outcome(Status.RUNTIME_ERROR_OTHER, "Memory limit exceeded", 1, None)),
        (finished(Verdict.MEMORY_LIMIT_EXCEEDED, exit_code=137, signal="SIGKILL"), Outcome(Status.RUNTIME_ERROR_OTHER, "Memory limit exceeded", 0, 9)),
        (finished(Verdict.INTERNAL_ERROR, exit_code=None, stderr="the runner vanished"), Outcome(Status.INTERNAL_ERROR, "the runner vanished", None, None)),
    ],
    ids=[
        "accepted", "wrong-answer", "time-limit", "compile-error", "non-zero-exit", "sigsegv", "sigfpe", "sigabrt",
        "other-signal", "file-size", "memory-by-runtime", "memory-by-kernel", "internal",
    ],
)  # fmt: skip
def test_a_run_reads_as_judge0_would_report_it(response: ExecuteResponse, expected: Outcome) -> None:
    assert outcome_of(response) == expected


def test_every_verdict_has_a_status_and_every_status_a_description() -> None:
    assert set(STATUS_BY_VERDICT) == set(Verdict)
    assert set(DESCRIPTIONS) == set(Status)
    assert [int(status) for status in Status] == list(range(1, 15))


@pytest.mark.parametrize(("name", "number"), [("SIGSEGV", 11), ("SIG70", 70), ("SIGWHAT", None)], ids=str)
def test_signal_names_become_numbers(name: str, number: int | None) -> None:
    assert signal_number(name) == number


def test_the_readme_table_is_this_table() -> None:
    # Given the README's status table (verdict | signal | Judge0 status)
    rows = re.findall(
        r"^\| `(\w+)` \| (`SIG\w+`|any other signal|none|—) \| (\d+) ", README.read_text(), re.M
    )
    assert rows, "the README has no status table"
    # Then every row is what the code answers
    for verdict, signal, status in rows:
        signal_name = {"any other signal": "SIGKILL", "none": None, "—": None}.get(signal, signal.strip("`"))
        assert int(status_of(Verdict(verdict), signal_name)) == int(status), (verdict, signal)
    assert {Verdict(verdict) for verdict, _signal, _status in rows} == set(Verdict)
