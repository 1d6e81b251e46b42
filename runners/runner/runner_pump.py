"""The poll loop of one started process: stdin out, stdout/stderr in, the exit or the deadline.

Standard library only: part of the runner program, PID 1 of every runner container. One select.poll loop
(selectors costs start-up time on every request) feeds stdin and reads both output streams, so a program
with large stdin or output never deadlocks. Each stream is captured by runner_output.Capture (its first
`output_limit_bytes`, its length, its tail, its normalised digest), the one capture the service's judge
also trusts. When the main process exits or its deadline passes, `stop` kills what is left of it.
"""

from __future__ import annotations

import math
import os
import resource
import select
import signal
import time

from runner_output import Capture
from runner_result import ProcessResult, decode_status
from runner_spawn import close_all

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable

READ_CHUNK_BYTES = 64 * 1024
WRITE_CHUNK_BYTES = 64 * 1024
# After the main process is gone, how long a descendant that escaped `stop` may hold the pipes open.
DRAIN_GRACE_S = 0.5
POLL_INTERVAL_S = 0.02  # only used when the kernel has no pidfd_open
READABLE = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
WRITABLE = select.POLLOUT | select.POLLHUP | select.POLLERR


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return  # already gone


class Pump:
    """One poll loop: stdin out, stdout/stderr in, and the child's exit (pidfd) or the deadline."""

    def __init__(
        self,
        pid: int,
        *,
        stdin: bytes,
        fds: tuple[int, int, int | None],
        output_limit_bytes: int,
        started: float,
        deadline: float,
        stop: Callable[[int], None] = kill_group,
    ) -> None:
        self.pid = pid
        self.stop = stop  # called with the main pid: kills its group (or more), the main pid still unreaped
        self.started = started
        self.deadline = deadline
        self.stdout = Capture(output_limit_bytes)
        self.stderr = Capture(output_limit_bytes)
        self.poller = select.poll()
        self.pending_stdin = memoryview(stdin)
        self.stdin_offset = 0
        self.stdin_fd: int | None = fds[0]
        self.readers: dict[int, Capture] = {}
        self.owned_fds = [fd for fd in fds if fd is not None]
        self.pidfd = _open_pidfd(pid)
        self.exited = False
        self._register(fds)

    def _register(self, fds: tuple[int, int, int | None]) -> None:
        stdin_fd, stdout_fd, stderr_fd = fds
        if self.pending_stdin:
            os.set_blocking(stdin_fd, False)
            self.poller.register(stdin_fd, WRITABLE)
        else:
            self._close_stdin()
        self.readers[stdout_fd] = self.stdout
        if stderr_fd is not None:
            self.readers[stderr_fd] = self.stderr
        for fd in self.readers:
            self.poller.register(fd, READABLE)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)

    def finish(self) -> ProcessResult:
        """Pump until the process is reaped and its pipes drained; always releases the fds."""
        try:
            status, rusage, timed_out = self.run()
        finally:
            self.close()
        exit_code, signal_number = decode_status(status)
        return ProcessResult(
            exit_code=exit_code,
            signal_number=signal_number,
            timed_out=timed_out,
            wall_time_s=time.monotonic() - self.started,
            max_rss_kb=rusage.ru_maxrss,
            stdout=self.stdout,
            stderr=self.stderr,
        )

    def exited_already(self) -> bool:
        """Whether the main process has exited (without reaping it)."""
        peek = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return peek is not None

    def run(self) -> tuple[int, resource.struct_rusage, bool]:
        """Loop until the main process is reaped and its pipes are drained (or the drain grace is over)."""
        timed_out = False
        reaped: tuple[int, resource.struct_rusage] | None = None
        drain_deadline = 0.0
        while True:
            if reaped is None and not timed_out and time.monotonic() >= self.deadline:
                timed_out = True
                self.stop(self.pid)
            if reaped is None:
                reaped = self._try_reap(block=timed_out)
                drain_deadline = time.monotonic() + DRAIN_GRACE_S
            if reaped is not None and (not self.readers or time.monotonic() >= drain_deadline):
                status, rusage = reaped
                return status, rusage, timed_out
            until = drain_deadline if reaped is not None else self.deadline
            wait_s = max(0.0, until - time.monotonic())
            if self.pidfd is None and reaped is None:
                wait_s = min(wait_s, POLL_INTERVAL_S)
            self._poll_once(wait_s)

    def _try_reap(self, *, block: bool) -> tuple[int, resource.struct_rusage] | None:
        """Reap the main process once it has exited, killing what is left of its group first."""
        if not block and not self._has_exited():
            return None
        # The unreaped zombie still holds the pid, so the group id cannot have been reused yet.
        self.stop(self.pid)
        _pid, status, rusage = os.wait4(self.pid, 0)
        return status, rusage

    def _has_exited(self) -> bool:
        if self.pidfd is not None:
            return self.exited
        return self.exited_already()

    def _poll_once(self, timeout_s: float) -> None:
        for fd, _events in self.poller.poll(math.ceil(timeout_s * 1000)):
            if fd == self.pidfd:
                self.exited = True
                self.poller.unregister(fd)
            elif fd in self.readers:
                self._read(fd)
            elif fd == self.stdin_fd:
                self._write(fd)

    def _read(self, fd: int) -> None:
        chunk = os.read(fd, READ_CHUNK_BYTES)
        if chunk:
            self.readers[fd].add(chunk)
        else:
            self.poller.unregister(fd)
            del self.readers[fd]

    def _write(self, fd: int) -> None:
        chunk = self.pending_stdin[self.stdin_offset : self.stdin_offset + WRITE_CHUNK_BYTES]
        try:
            self.stdin_offset += os.write(fd, chunk)
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):
            self.stdin_offset = len(self.pending_stdin)  # the program stopped reading: that is its choice
        if self.stdin_offset >= len(self.pending_stdin):
            self.poller.unregister(fd)
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd is not None:
            self.owned_fds.remove(self.stdin_fd)
            close_all(self.stdin_fd)
            self.stdin_fd = None

    def close(self) -> None:
        close_all(*self.owned_fds, self.pidfd)
        self.owned_fds = []
        self.pidfd = None


def _open_pidfd(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:  # old kernel, or a seccomp policy that forbids it: fall back to polling
        return None
    return fd
