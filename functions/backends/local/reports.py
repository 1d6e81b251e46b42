"""What one sandbox's run looked like from outside -> the report's facts for that process tree. Pure."""

from __future__ import annotations

import signal

from functions.core.output_digest import Capture
from functions.core.process_facts import NOT_RUN, exit_status, stream_report
from functions.core.protocol import ProcessReport

__all__ = ["NOT_RUN", "exit_status", "process_report", "stream_report"]


def process_report(
    *,
    returncode: int,
    stopped: bool,
    wall_time_s: float,
    cpu_time_s: float,
    memory_kb: int,
    oom_killed: bool,
    stdout: Capture,
    stderr: Capture,
) -> ProcessReport:
    """`stopped`: we killed it (deadline or cancel); its own status then says only that it was killed.
    bubblewrap reports like a shell (`exit_status`): death by signal N as 128 + N, its own death by a
    signal (our kill) as a negative code."""
    exit_code, signal_number = (None, int(signal.SIGKILL)) if stopped else exit_status(returncode)
    return ProcessReport(
        exit_code=exit_code,
        signal=signal_number,
        timed_out=stopped,
        oom_killed=oom_killed,
        wall_time_s=round(max(wall_time_s, 0.0), 6),
        cpu_time_s=round(max(cpu_time_s, 0.0), 6),
        memory_kb=memory_kb,
        stdout=stream_report(stdout),
        stderr=stream_report(stderr),
    )
