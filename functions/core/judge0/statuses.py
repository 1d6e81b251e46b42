"""Judge0's statuses, and the one table from this service's verdicts to them (README, "Coming from Judge0").

Judge0 has no memory-limit status: `memory_limit_exceeded` answers `Runtime Error (Other)` with a message
that says so. Judge0 tells runtime errors apart by the signal that ended the program; so does this table.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import IntEnum

from functions.core.models import ExecuteResponse
from functions.core.verdicts import Verdict


class Status(IntEnum):
    IN_QUEUE = 1
    PROCESSING = 2
    ACCEPTED = 3
    WRONG_ANSWER = 4
    TIME_LIMIT_EXCEEDED = 5
    COMPILATION_ERROR = 6
    RUNTIME_ERROR_SIGSEGV = 7
    RUNTIME_ERROR_SIGXFSZ = 8
    RUNTIME_ERROR_SIGFPE = 9
    RUNTIME_ERROR_SIGABRT = 10
    RUNTIME_ERROR_NZEC = 11
    RUNTIME_ERROR_OTHER = 12
    INTERNAL_ERROR = 13
    EXEC_FORMAT_ERROR = 14


DESCRIPTIONS: dict[Status, str] = {
    Status.IN_QUEUE: "In Queue",
    Status.PROCESSING: "Processing",
    Status.ACCEPTED: "Accepted",
    Status.WRONG_ANSWER: "Wrong Answer",
    Status.TIME_LIMIT_EXCEEDED: "Time Limit Exceeded",
    Status.COMPILATION_ERROR: "Compilation Error",
    Status.RUNTIME_ERROR_SIGSEGV: "Runtime Error (SIGSEGV)",
    Status.RUNTIME_ERROR_SIGXFSZ: "Runtime Error (SIGXFSZ)",
    Status.RUNTIME_ERROR_SIGFPE: "Runtime Error (SIGFPE)",
    Status.RUNTIME_ERROR_SIGABRT: "Runtime Error (SIGABRT)",
    Status.RUNTIME_ERROR_NZEC: "Runtime Error (NZEC)",
    Status.RUNTIME_ERROR_OTHER: "Runtime Error (Other)",
    Status.INTERNAL_ERROR: "Internal Error",
    Status.EXEC_FORMAT_ERROR: "Exec Format Error",
}

# verdict -> status; a runtime error with a signal is looked up in STATUS_BY_SIGNAL instead.
STATUS_BY_VERDICT: dict[Verdict, Status] = {
    Verdict.ACCEPTED: Status.ACCEPTED,
    Verdict.WRONG_ANSWER: Status.WRONG_ANSWER,
    Verdict.TIME_LIMIT_EXCEEDED: Status.TIME_LIMIT_EXCEEDED,
    Verdict.COMPILATION_ERROR: Status.COMPILATION_ERROR,
    Verdict.RUNTIME_ERROR: Status.RUNTIME_ERROR_NZEC,  # a non-zero exit status
    Verdict.MEMORY_LIMIT_EXCEEDED: Status.RUNTIME_ERROR_OTHER,
    Verdict.OUTPUT_LIMIT_EXCEEDED: Status.RUNTIME_ERROR_SIGXFSZ,  # a file beyond the size limit
    Verdict.INTERNAL_ERROR: Status.INTERNAL_ERROR,
}
# The signal that ended a runtime error -> status; any other signal is Runtime Error (Other).
STATUS_BY_SIGNAL: dict[str, Status] = {
    "SIGSEGV": Status.RUNTIME_ERROR_SIGSEGV,
    "SIGXFSZ": Status.RUNTIME_ERROR_SIGXFSZ,
    "SIGFPE": Status.RUNTIME_ERROR_SIGFPE,
    "SIGABRT": Status.RUNTIME_ERROR_SIGABRT,
}
MEMORY_LIMIT_MESSAGE = "Memory limit exceeded"
TIME_LIMIT_MESSAGE = "Time limit exceeded"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a finished run reads in Judge0's terms."""

    status: Status
    message: str | None
    exit_code: int | None
    exit_signal: int | None


def status_of(verdict: Verdict, signal_name: str | None) -> Status:
    if verdict is Verdict.RUNTIME_ERROR and signal_name is not None:
        return STATUS_BY_SIGNAL.get(signal_name, Status.RUNTIME_ERROR_OTHER)
    return STATUS_BY_VERDICT[verdict]


def outcome_of(response: ExecuteResponse) -> Outcome:
    """Status, message, exit code and signal as Judge0 fills them: after a run the exit code is 0 when the
    program has none (a signal or the time limit ended it), and the signal is a number."""
    status = status_of(response.verdict, response.signal)
    if response.verdict is Verdict.COMPILATION_ERROR:
        return Outcome(status, None, None, None)
    if response.verdict is Verdict.INTERNAL_ERROR:
        return Outcome(status, response.stderr or "internal error", None, None)
    exit_signal = None if response.signal is None else signal_number(response.signal)
    exited = exit_signal is None and response.verdict is not Verdict.TIME_LIMIT_EXCEEDED
    exit_code = response.exit_code if exited else 0
    return Outcome(status, _message(response, exit_code, exit_signal), exit_code, exit_signal)


def _message(response: ExecuteResponse, exit_code: int | None, exit_signal: int | None) -> str | None:
    if response.verdict is Verdict.MEMORY_LIMIT_EXCEEDED:
        return MEMORY_LIMIT_MESSAGE
    if response.verdict is Verdict.TIME_LIMIT_EXCEEDED:
        return TIME_LIMIT_MESSAGE
    if exit_signal is not None:
        return f"Caught fatal signal {exit_signal}"
    if exit_code:
        return f"Exited with error status {exit_code}"
    return None


def signal_number(name: str) -> int | None:
    """SIGSEGV -> 11; the judge's name for a signal Python does not know, SIG<n>, -> n."""
    try:
        return int(signal.Signals[name])
    except KeyError:
        digits = name.removeprefix("SIG")
        return int(digits) if digits.isdigit() else None
