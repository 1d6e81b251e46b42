"""What one sandbox's run looked like from outside -> the report's evidence for that process tree. Pure."""

from __future__ import annotations

import signal

from functions.core.output_digest import Capture
from functions.core.process_evidence import NOT_RUN, exit_status, stream_report
from functions.core.protocol import ProcessReport, b64decode

__all__ = ["NOT_RUN", "exit_status", "output_refused", "process_report", "stream_report"]


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


def output_refused(compile_step: ProcessReport, reason: str) -> ProcessReport:
    """A compile whose output the backend refuses (too big, too many files) failed, as a compile error does:
    the source caused it, not the service. Its output is the compiler's, then the reason; its status 1."""
    kept = b64decode(compile_step.stdout.data_b64)
    text = kept + (b"\n" if kept and not kept.endswith(b"\n") else b"") + f"{reason}\n".encode()
    output = Capture(len(text))
    output.add(text)
    return compile_step.model_copy(update={"exit_code": 1, "stdout": stream_report(output)})
