"""Map what a process did to a verdict (the names are functions/core/verdicts.py's Verdict values).

Standard library only (the runner cannot import the service's packages inside a sandbox). The expected-output
comparison lives only here: judging happens inside the sandbox, never in the service.
"""

from __future__ import annotations

import re
import signal

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Sequence

    from runner_result import ProcessResult

ACCEPTED = "accepted"
WRONG_ANSWER = "wrong_answer"
RUNTIME_ERROR = "runtime_error"
TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"

TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` returns
SIGNAL_EXIT_BASE = 128  # a shell reports death by signal N as exit code 128 + N


class Judgement:
    __slots__ = ("exit_code", "signal_name", "stderr_note", "verdict")

    def __init__(
        self, verdict: str, exit_code: int | None, signal_name: str | None, stderr_note: str = ""
    ) -> None:
        self.verdict = verdict
        self.exit_code = exit_code
        self.signal_name = signal_name
        self.stderr_note = stderr_note


class MemoryRule:
    """What counts as running out of memory for one case."""

    __slots__ = ("error_patterns", "floor_kb", "limit_kb")

    def __init__(self, *, limit_kb: int, floor_kb: int, error_patterns: Sequence[str]) -> None:
        self.limit_kb = limit_kb  # peak RSS at or above this is over the limit
        # The runner's own RSS when it forked: a child's ru_maxrss never reads below it.
        self.floor_kb = floor_kb
        self.error_patterns = error_patterns


def judge(result: ProcessResult, memory: MemoryRule, expected_output: bytes | None) -> Judgement:
    if result.timed_out or result.signal_number == signal.SIGXCPU:
        return Judgement(TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE, None)
    exit_code = result.exit_code
    signal_name = None
    if result.signal_number is not None:
        exit_code = SIGNAL_EXIT_BASE + result.signal_number
        signal_name = _signal_name(result.signal_number)
    if _out_of_memory(result, memory):
        return Judgement(MEMORY_LIMIT_EXCEEDED, exit_code, signal_name)
    if result.signal_number == signal.SIGXFSZ:
        return Judgement(OUTPUT_LIMIT_EXCEEDED, exit_code, signal_name)
    if result.signal_number is not None or exit_code != 0:
        return Judgement(RUNTIME_ERROR, exit_code, signal_name)
    if expected_output is not None and not outputs_match(bytes(result.stdout.data), expected_output):
        return Judgement(WRONG_ANSWER, exit_code, None)
    return Judgement(ACCEPTED, exit_code, None)


def _out_of_memory(result: ProcessResult, memory: MemoryRule) -> bool:
    # A SIGKILL nobody here sent is the memory cgroup's OOM killer.
    if result.signal_number == signal.SIGKILL:
        return True
    if result.max_rss_kb >= memory.limit_kb and result.max_rss_kb > memory.floor_kb:
        return True
    failed = result.signal_number is not None or result.exit_code != 0
    if not failed:
        return False
    stderr = bytes(result.stderr.data) + result.stderr.tail
    text = stderr.decode("utf-8", errors="replace")
    return any(re.search(pattern, text) for pattern in memory.error_patterns)


def _signal_name(signal_number: int) -> str:
    try:
        return signal.Signals(signal_number).name
    except ValueError:
        return f"SIG{signal_number}"


def outputs_match(actual: bytes, expected: bytes) -> bool:
    """Compare ignoring trailing whitespace on each line and trailing blank lines (judge convention)."""
    return _normalise(actual) == _normalise(expected)


def _normalise(text: bytes) -> list[bytes]:
    lines = [line.rstrip() for line in text.replace(b"\r\n", b"\n").split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines
