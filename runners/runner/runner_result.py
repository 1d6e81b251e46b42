"""What one finished process did: exit status, wall time, peak memory and its captured output.

Standard library only: part of the runner program (a __slots__ class rather than a dataclass, which costs
start-up time on every request). CPU time is not here: it covers every process of a step, so the step
measures it (RUSAGE_CHILDREN) once all of them are reaped.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from runner_output import Capture


class ProcessResult:
    __slots__ = (
        "exit_code",
        "max_rss_kb",
        "signal_number",
        "stderr",
        "stdout",
        "timed_out",
        "wall_time_s",
    )

    def __init__(
        self,
        *,
        exit_code: int | None,  # None when killed by a signal
        signal_number: int | None,
        timed_out: bool,
        wall_time_s: float,
        max_rss_kb: int,
        stdout: Capture,
        stderr: Capture,
    ) -> None:
        self.exit_code = exit_code
        self.signal_number = signal_number
        self.timed_out = timed_out
        self.wall_time_s = wall_time_s
        self.max_rss_kb = max_rss_kb
        self.stdout = stdout
        self.stderr = stderr


def decode_status(status: int) -> tuple[int | None, int | None]:
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None
