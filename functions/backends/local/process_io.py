"""The sandbox process's I/O loop: start it, feed its stdin, read both streams (bounded) until EOF, the
deadline or a cancel, then make sure nothing of it is left alive.

`functions.backends.local.sandbox` builds the command line and the cgroup; this module only runs it.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from functions.backends.local.cgroups import RunCgroup
from functions.core.errors import BackendUnavailableError

_READ_CHUNK_BYTES = 64 * 1024
_POLL_TICK_S = 0.05
# After the runner exits, stragglers holding the pipes get this long before we stop reading.
_DRAIN_AFTER_EXIT_S = 1.0


@dataclass(slots=True)
class Streams:
    """What one run wrote, each stream capped; why reading stopped early, if it did."""

    stdout_max_bytes: int
    stderr_max_bytes: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    cancelled: bool = False
    stdout_overflow: bool = False


def run_process(
    *,
    argv: list[str],
    stdin: bytes | None,
    streams: Streams,
    cgroup: RunCgroup | None,
    deadline_s: float,
    cancel: threading.Event | None,
) -> int:
    """Run `argv` to completion (or kill it); fills `streams` and returns the exit code (128+N for
    signal N). When it returns, the process group and the cgroup are empty."""
    try:
        proc = _start(argv, stdin)
    except OSError as exc:
        raise BackendUnavailableError(f"cannot start the sandbox ({argv[0]}): {exc}") from exc
    try:
        _communicate(
            proc=proc, stdin=stdin, streams=streams, cgroup=cgroup, deadline_s=deadline_s, cancel=cancel
        )
    finally:
        _kill(proc, cgroup)
    returncode = proc.returncode
    return 128 - returncode if returncode < 0 else returncode


def _start(argv: list[str], stdin: bytes | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # bwrap clears the sandbox's env anyway; the outer process gets nothing of ours either.
        env={"PATH": "/usr/bin:/bin"},
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )


def _kill(proc: subprocess.Popen[bytes], cgroup: RunCgroup | None) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    proc.wait()


def _communicate(
    *,
    proc: subprocess.Popen[bytes],
    stdin: bytes | None,
    streams: Streams,
    cgroup: RunCgroup | None,
    deadline_s: float,
    cancel: threading.Event | None,
) -> None:
    """Feed stdin and read both streams (bounded) until EOF, the deadline or a cancel."""
    assert proc.stdout is not None  # noqa: S101 - Popen was given PIPE
    assert proc.stderr is not None  # noqa: S101
    pending = memoryview(stdin or b"")
    with selectors.DefaultSelector() as selector:
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            selector.register(proc.stdin, selectors.EVENT_WRITE)
        selector.register(proc.stdout, selectors.EVENT_READ, streams.stdout)
        selector.register(proc.stderr, selectors.EVENT_READ, streams.stderr)
        exited_at_s: float | None = None
        while selector.get_map():
            now_s = time.monotonic()
            if _interrupted(streams, now_s=now_s, deadline_s=deadline_s, cancel=cancel):
                return
            if exited_at_s is None and proc.poll() is not None:
                # The runner is done: whatever it left behind dies now, so the pipes reach EOF.
                exited_at_s = now_s
                if cgroup is not None:
                    cgroup.kill_all()
            if exited_at_s is not None and now_s - exited_at_s > _DRAIN_AFTER_EXIT_S:
                return
            for key, _ in selector.select(timeout=min(_POLL_TICK_S, deadline_s - now_s)):
                if key.fileobj is proc.stdin:
                    pending = _feed(selector, proc, pending)
                elif not _drain(selector, key, streams):
                    return


def _interrupted(
    streams: Streams, *, now_s: float, deadline_s: float, cancel: threading.Event | None
) -> bool:
    """True (and noted in `streams`) when the run must stop now: cancelled, or past its deadline."""
    if cancel is not None and cancel.is_set():
        streams.cancelled = True
    elif now_s >= deadline_s:
        streams.timed_out = True
    return streams.cancelled or streams.timed_out


def _feed(selector: selectors.BaseSelector, proc: subprocess.Popen[bytes], pending: memoryview) -> memoryview:
    assert proc.stdin is not None  # noqa: S101
    try:
        written = os.write(proc.stdin.fileno(), pending[:_READ_CHUNK_BYTES]) if pending else 0
    except BlockingIOError:
        return pending
    except BrokenPipeError:
        written = len(pending)
    pending = pending[written:]
    if not pending:
        selector.unregister(proc.stdin)
        proc.stdin.close()
    return pending


def _drain(selector: selectors.BaseSelector, key: selectors.SelectorKey, streams: Streams) -> bool:
    """Read one chunk; False when stdout overflowed its cap (the caller then kills the run)."""
    buffer: bytearray = key.data
    chunk = os.read(key.fd, _READ_CHUNK_BYTES)
    if not chunk:
        selector.unregister(key.fileobj)
        return True
    is_stdout = buffer is streams.stdout
    cap = streams.stdout_max_bytes if is_stdout else streams.stderr_max_bytes
    room = cap - len(buffer)
    buffer += chunk[: max(room, 0)]
    if len(chunk) > room and is_stdout:
        streams.stdout_overflow = True
        return False
    return True
