"""What one sandbox's run looked like from outside -> the report's facts for that process tree. Pure."""

from __future__ import annotations

import signal

from functions.core.judging import SIGNAL_EXIT_BASE
from functions.core.output_digest import Capture
from functions.core.protocol import MAX_SIGNAL_NUMBER, ProcessReport, StreamReport, b64encode


def stream_report(capture: Capture) -> StreamReport:
    return StreamReport(
        data_b64=b64encode(bytes(capture.data)),
        total_bytes=capture.total_bytes,
        normalized_sha256=capture.digest.hexdigest(),
        tail_b64=b64encode(capture.tail) if capture.truncated else "",
    )


# A case that never started: the task's time budget was used up by the ones before it.
NOT_RUN = ProcessReport(
    exit_code=None,
    not_run=True,
    stdout=stream_report(Capture(1)),
    stderr=stream_report(Capture(1)),
)


def exit_status(returncode: int) -> tuple[int | None, int | None]:
    """(exit code, signal) from bubblewrap's status: like a shell it reports death by signal N as 128 + N,
    and its own death by a signal (our kill) as a negative code."""
    if returncode < 0:
        return None, -returncode
    if SIGNAL_EXIT_BASE < returncode <= SIGNAL_EXIT_BASE + MAX_SIGNAL_NUMBER:
        return None, returncode - SIGNAL_EXIT_BASE
    return returncode, None


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
    """`stopped`: we killed it (deadline or cancel); its own status then says only that it was killed."""
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
