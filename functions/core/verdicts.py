"""The closed set of verdicts and how a set of test-case verdicts becomes one."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    COMPILATION_ERROR = "compilation_error"
    RUNTIME_ERROR = "runtime_error"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"
    INTERNAL_ERROR = "internal_error"


TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` returns; the basic response contract keeps it


def overall_verdict(case_verdicts: Iterable[Verdict]) -> Verdict:
    """The first non-accepted verdict, else accepted."""
    return next((verdict for verdict in case_verdicts if verdict is not Verdict.ACCEPTED), Verdict.ACCEPTED)
