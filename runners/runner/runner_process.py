"""Run one command under rlimits with a wall-clock kill, feeding stdin and capping captured output.

Standard library only: this module is part of the runner program that runs inside every sandbox.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

READ_CHUNK_BYTES = 64 * 1024
WRITE_CHUNK_BYTES = 64 * 1024
TAIL_BYTES = 4096  # kept past the cap so a memory error printed last is still recognised
OPEN_FILES_LIMIT = 256
# After the main process is gone, how long an escaped descendant may hold the pipes open.
DRAIN_GRACE_S = 0.5
POLL_INTERVAL_S = 0.02  # only used when the kernel has no pidfd_open


@dataclass(frozen=True)
class Limits:
    """The rlimits and wall-clock timeout of one process (group)."""

    timeout_s: float
    file_size_bytes: int
    max_processes: int
    address_space_bytes: int | None = None


@dataclass
class Capture:
    """One output stream: the first `limit_bytes`, the last few KiB, and whether anything was dropped."""

    limit_bytes: int
    data: bytearray = field(default_factory=bytearray)
    tail: bytes = b""
    truncated: bool = False

    def add(self, chunk: bytes) -> None:
        room = self.limit_bytes - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True
        self.tail = (self.tail + chunk)[-TAIL_BYTES:]


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None  # None when killed by a signal
    signal_number: int | None
    timed_out: bool
    wall_time_s: float
    cpu_time_s: float
    max_rss_kb: int
    stdout: Capture
    stderr: Capture


def make_preexec(limits: Limits) -> Callable[[], None]:
    """Runs in the child between fork and exec: the child is already a session leader."""
    cpu_s = math.ceil(limits.timeout_s) + 1
    settings: list[tuple[int, int]] = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
        (resource.RLIMIT_NOFILE, OPEN_FILES_LIMIT),
        (resource.RLIMIT_CPU, cpu_s),
        # Not enforced for a real root uid; the sandbox adds a pids cgroup where it can.
        (resource.RLIMIT_NPROC, limits.max_processes),
    ]
    if limits.address_space_bytes is not None:
        settings.append((resource.RLIMIT_AS, limits.address_space_bytes))

    def preexec() -> None:
        for which, value in settings:
            _lower_limit(which, value)

    return preexec


def _lower_limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def run_process(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    stdin: bytes,
    limits: Limits,
    output_limit_bytes: int,
    merge_stderr: bool = False,
) -> ProcessResult:
    """Start `argv` in its own process group, pump its pipes, kill the group at the timeout or exit."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        start_new_session=True,
        preexec_fn=make_preexec(limits),  # noqa: PLW1509 - the runner starts no threads
        close_fds=True,
    )
    pump = _Pump(process, stdin, output_limit_bytes, deadline=started + limits.timeout_s)
    try:
        status, rusage, timed_out = pump.run()
    finally:
        pump.close()
        process.returncode = 0  # reaped by os.wait4 below; keep Popen from waiting again
    wall_time_s = time.monotonic() - started
    exit_code, signal_number = _decode_status(status)
    return ProcessResult(
        exit_code=exit_code,
        signal_number=signal_number,
        timed_out=timed_out,
        wall_time_s=wall_time_s,
        cpu_time_s=rusage.ru_utime + rusage.ru_stime,
        max_rss_kb=rusage.ru_maxrss,
        stdout=pump.stdout,
        stderr=pump.stderr,
    )


def _decode_status(status: int) -> tuple[int | None, int | None]:
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _Pump:
    """One selector loop: stdin out, stdout/stderr in, and the child's exit (pidfd) or the deadline."""

    def __init__(
        self, process: subprocess.Popen[bytes], stdin: bytes, output_limit_bytes: int, *, deadline: float
    ) -> None:
        self.process = process
        self.deadline = deadline
        self.stdout = Capture(output_limit_bytes)
        self.stderr = Capture(output_limit_bytes)
        self.selector = selectors.DefaultSelector()
        self.pending_stdin = memoryview(stdin)
        self.stdin_offset = 0
        self.pidfd = _open_pidfd(process.pid)
        self.exited = False
        self._register()

    def _register(self) -> None:
        if self.process.stdin is None or self.process.stdout is None:
            raise RuntimeError("the process was started without pipes")
        if self.pending_stdin:
            os.set_blocking(self.process.stdin.fileno(), False)
            self.selector.register(self.process.stdin, selectors.EVENT_WRITE)
        else:
            self.process.stdin.close()
        self.selector.register(self.process.stdout, selectors.EVENT_READ, self.stdout)
        if self.process.stderr is not None:
            self.selector.register(self.process.stderr, selectors.EVENT_READ, self.stderr)
        if self.pidfd is not None:
            self.selector.register(self.pidfd, selectors.EVENT_READ, "exit")

    def run(self) -> tuple[int, resource.struct_rusage, bool]:
        """Loop until the main process is reaped and its pipes are drained (or the drain grace is over)."""
        timed_out = False
        reaped: tuple[int, resource.struct_rusage] | None = None
        drain_deadline = 0.0
        while True:
            if reaped is None and not timed_out and time.monotonic() >= self.deadline:
                timed_out = True
                kill_group(self.process.pid)
            if reaped is None:
                reaped = self._try_reap(block=timed_out)
                drain_deadline = time.monotonic() + DRAIN_GRACE_S
            if reaped is not None and (not self._has_readers() or time.monotonic() >= drain_deadline):
                status, rusage = reaped
                return status, rusage, timed_out
            until = drain_deadline if reaped is not None else self.deadline
            wait_s = max(0.0, until - time.monotonic())
            if self.pidfd is None and reaped is None:
                wait_s = min(wait_s, POLL_INTERVAL_S)
            self._select_once(wait_s)

    def _try_reap(self, *, block: bool) -> tuple[int, resource.struct_rusage] | None:
        """Reap the main process once it has exited, killing what is left of its group first."""
        if not block and not self._has_exited():
            return None
        # The unreaped zombie still holds the pid, so the group id cannot have been reused yet.
        kill_group(self.process.pid)
        _pid, status, rusage = os.wait4(self.process.pid, 0)
        return status, rusage

    def _has_exited(self) -> bool:
        if self.pidfd is not None:
            return self.exited
        peek = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return peek is not None

    def _has_readers(self) -> bool:
        return any(key.data in (self.stdout, self.stderr) for key in self.selector.get_map().values())

    def _select_once(self, timeout_s: float) -> None:
        for key, _events in self.selector.select(timeout_s):
            if key.data == "exit":
                self.exited = True
                self.selector.unregister(key.fileobj)
            elif isinstance(key.data, Capture):
                self._read(key)
            else:
                self._write(key)

    def _read(self, key: selectors.SelectorKey) -> None:
        chunk = os.read(key.fd, READ_CHUNK_BYTES)
        if chunk:
            capture: Capture = key.data
            capture.add(chunk)
        else:
            self.selector.unregister(key.fileobj)

    def _write(self, key: selectors.SelectorKey) -> None:
        chunk = self.pending_stdin[self.stdin_offset : self.stdin_offset + WRITE_CHUNK_BYTES]
        try:
            self.stdin_offset += os.write(key.fd, chunk)
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):
            self.stdin_offset = len(self.pending_stdin)  # the program stopped reading: that is its choice
        if self.stdin_offset >= len(self.pending_stdin):
            self.selector.unregister(key.fileobj)
            self._close_quietly(self.process.stdin)

    @staticmethod
    def _close_quietly(stream: object) -> None:
        close = getattr(stream, "close", None)
        if close is not None:
            with contextlib.suppress(OSError):
                close()

    def close(self) -> None:
        self.selector.close()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            self._close_quietly(stream)
        if self.pidfd is not None:
            os.close(self.pidfd)


def _open_pidfd(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:  # old kernel, or a seccomp policy that forbids it: fall back to polling
        return None
    return fd
