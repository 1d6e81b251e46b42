"""Verdicts, decided in the service from a report's evidence (docs/runner-protocol.md, "Judging").

Nothing the program can write decides its verdict: the supervisor reports how each process ended and the
digest of what it printed; the expected outputs never leave the service (the plan keeps their digests).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from functions.core.protocol import SHA256_HEX, ProcessReport, StreamReport, b64decode
from functions.core.verdicts import TIMEOUT_EXIT_CODE, Verdict

SIGNAL_EXIT_BASE = 128  # a shell reports death by signal N as exit code 128 + N


class JudgingPlan(BaseModel):
    """What the judge needs besides the report; small enough for a Step Functions state or a Job annotation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str
    language: str
    compiled: bool
    memory_error_patterns: tuple[str, ...] = ()
    timeout_s: float = Field(gt=0)
    compile_timeout_s: float = Field(gt=0)
    output_limit_bytes: int = Field(gt=0)
    expected_sha256: tuple[str | None, ...] = Field(min_length=1)
    include_test_results: bool = False
    # The toolchain version to show when a report has none (e.g. a sandbox killed before it answered).
    language_version: str = ""

    @property
    def case_count(self) -> int:
        return len(self.expected_sha256)


def valid_digest(value: str | None) -> bool:
    return value is None or re.fullmatch(SHA256_HEX, value) is not None


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    exit_code: int | None
    signal_name: str | None
    note: str = ""  # appended to the case's stderr for the reader


def judge_case(  # noqa: PLR0911 - one return per rule, in the documented order
    case: ProcessReport, plan: JudgingPlan, expected_sha256: str | None
) -> Judgement:
    """The first rule that applies (docs/runner-protocol.md lists them in this order)."""
    if case.not_run:
        return Judgement(Verdict.TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE, None, _NOT_RUN_NOTE)
    if case.timed_out or _cpu_limit_hit(case, plan):
        note = f"Time limit exceeded: the program was killed after {plan.timeout_s:g} s"
        return Judgement(Verdict.TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE, None, note)
    exit_code = case.exit_code if case.signal is None else SIGNAL_EXIT_BASE + case.signal
    signal_name = None if case.signal is None else signal_name_of(case.signal)
    if case.oom_killed or (_failed(case) and _memory_error(case.stderr, plan.memory_error_patterns)):
        return Judgement(Verdict.MEMORY_LIMIT_EXCEEDED, exit_code, signal_name)
    if case.signal == signal.SIGXFSZ:
        return Judgement(Verdict.OUTPUT_LIMIT_EXCEEDED, exit_code, signal_name)
    if _failed(case):
        return Judgement(Verdict.RUNTIME_ERROR, exit_code, signal_name)
    if expected_sha256 is not None and case.stdout.normalized_sha256 != expected_sha256:
        return Judgement(Verdict.WRONG_ANSWER, exit_code, None)
    return Judgement(Verdict.ACCEPTED, exit_code, None)


_NOT_RUN_NOTE = "not run: the request's time budget was used up"


def _failed(case: ProcessReport) -> bool:
    return case.signal is not None or case.exit_code != 0


def _memory_error(stderr: StreamReport, patterns: tuple[str, ...]) -> bool:
    if not patterns:
        return False
    text = (b64decode(stderr.data_b64) + b64decode(stderr.tail_b64)).decode("utf-8", errors="replace")
    return any(re.search(pattern, text) for pattern in patterns)


def signal_name_of(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def _cpu_limit_hit(case: ProcessReport, plan: JudgingPlan) -> bool:
    """SIGXCPU from the CPU-time rlimit (above the time limit), not one the program sent itself."""
    return case.signal == signal.SIGXCPU and case.cpu_time_s >= plan.timeout_s
