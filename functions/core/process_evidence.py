"""How a process tree ended, as evidence: the one reading of exit statuses and of kills seen from outside.

Both backends build reports here. A shell (bubblewrap's status, a container runtime's exit code) reports
death by signal N as 128 + N; a process tree that left no evidence of its own — killed at its deadline, or
by the kernel for memory — gets them from what its supervisor or the cluster saw. Verdicts are decided
from this evidence by `functions.core.judging`, never here.
"""

from __future__ import annotations

import signal

from functions.core.judging import SIGNAL_EXIT_BASE
from functions.core.output_digest import Capture
from functions.core.protocol import MAX_SIGNAL_NUMBER, ProcessReport, StreamReport, b64encode


def exit_status(returncode: int) -> tuple[int | None, int | None]:
    """(exit code, signal) from a shell-style status: 128 + N is death by signal N, a negative code (Popen)
    is death by that signal. An `exit(137)` cannot be told from a SIGKILL this way; both read as the signal."""
    if returncode < 0:
        return None, -returncode
    if SIGNAL_EXIT_BASE < returncode <= SIGNAL_EXIT_BASE + MAX_SIGNAL_NUMBER:
        return None, returncode - SIGNAL_EXIT_BASE
    return returncode, None


def stream_report(capture: Capture) -> StreamReport:
    return StreamReport(
        data_b64=b64encode(bytes(capture.data)),
        total_bytes=capture.total_bytes,
        normalized_sha256=capture.digest.hexdigest(),
        tail_b64=b64encode(capture.tail) if capture.truncated else "",
    )


def empty_stream() -> StreamReport:
    return stream_report(Capture(1))


# A case that never started: the task's time budget was used up by the ones before it.
NOT_RUN = ProcessReport(exit_code=None, not_run=True, stdout=empty_stream(), stderr=empty_stream())


def killed_from_outside(
    *, timed_out: bool, oom_killed: bool, wall_time_s: float = 0.0, memory_kb: int = 0
) -> ProcessReport:
    """A process tree that left no report of its own: SIGKILLed at its deadline (`timed_out`) or by the
    kernel for its memory limit (`oom_killed`, only with the kernel's evidence: an OOM kill counter or a
    container's OOMKilled), or both. Nothing it printed is known."""
    return ProcessReport(
        exit_code=None,
        signal=int(signal.SIGKILL),
        timed_out=timed_out,
        oom_killed=oom_killed,
        wall_time_s=round(max(wall_time_s, 0.0), 6),
        memory_kb=memory_kb,
        stdout=empty_stream(),
        stderr=empty_stream(),
    )


def with_oom_evidence(processes: list[ProcessReport]) -> list[ProcessReport]:
    """The memory cgroup around all of `processes` (one container) OOM-killed something while they ran, and
    their supervisor could not tell which. The ones that died of SIGKILL were killed for memory; when none
    did (a child was killed and the program went on), every one that ran is marked: the run as a whole went
    over its memory limit. Unchanged when the supervisor saw the evidence itself."""
    ran = [index for index, process in enumerate(processes) if not process.not_run]
    if not ran or any(processes[index].oom_killed for index in ran):
        return processes
    sigkilled = [
        index for index in ran if processes[index].signal == signal.SIGKILL and not processes[index].timed_out
    ]
    marked = set(sigkilled or ran)
    return [
        process.model_copy(update={"oom_killed": True}) if index in marked else process
        for index, process in enumerate(processes)
    ]
