"""One sandbox's I/O loop: feed the program's stdin, capture its output, stop at its exit or its deadline.

The loop runs outside the sandbox, in the service: the program can neither see nor signal it. When the
sandbox's first process (bubblewrap's monitor) exits, `on_exit` kills whatever is left (a straggler holding
the pipes), so reading ends at end of file; at the deadline or a cancel, `on_stop` empties the sandbox and
waits until it is empty.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from functions.core.output_digest import Capture

_READ_CHUNK_BYTES = 64 * 1024
_WRITE_CHUNK_BYTES = 64 * 1024
_POLL_TICK_S = 0.05
# After the monitor exits and the sandbox is emptied, the pipes reach end of file at once; this bounds a
# kernel that is slow to tear the processes down.
_DRAIN_AFTER_EXIT_S = 1.0


@dataclass(slots=True)
class PumpOutcome:
    timed_out: bool = False
    cancelled: bool = False
    exited_at_s: float | None = None  # when the monitor's exit was seen (None: stopped first)


class Pipes:
    """The service's ends of the sandbox's stdio; `stderr` is None when stderr goes to stdout.

    Each end is closed at most once (a descriptor number closed twice could be another thread's by then).
    """

    def __init__(self, *, stdin: int, stdout: int, stderr: int | None) -> None:
        self.stdin: int | None = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._closed: set[int] = set()

    def close_stdin(self) -> None:
        if self.stdin is not None:
            self._close(self.stdin)
            self.stdin = None

    def close(self) -> None:
        self.close_stdin()
        for fd in (self.stdout, self.stderr):
            if fd is not None:
                self._close(fd)

    def _close(self, fd: int) -> None:
        if fd not in self._closed:
            self._closed.add(fd)
            with contextlib.suppress(OSError):
                os.close(fd)


def pump(
    monitor: subprocess.Popen[bytes],
    pipes: Pipes,
    *,
    stdin: bytes,
    stdout: Capture,
    stderr: Capture,
    deadline_s: float,
    cancel: threading.Event | None,
    on_exit: Callable[[], object],
    on_stop: Callable[[], None],
) -> PumpOutcome:
    """Run the loop to its end: the monitor's exit (seen through a pidfd, at once) and its pipes drained, or
    the deadline or a cancel. Pipes closed early change nothing: the deadline holds until the exit."""
    outcome = PumpOutcome()
    exit_fd = os.pidfd_open(monitor.pid)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(exit_fd, selectors.EVENT_READ, _EXITED)
            _register(selector, pipes, stdin, stdout, stderr)
            _loop(selector, pipes, memoryview(stdin), outcome, deadline_s, cancel, on_exit, on_stop)
    finally:
        os.close(exit_fd)
    monitor.wait()
    return outcome


_EXITED = object()  # the selector key data of the monitor's pidfd


def _loop(  # noqa: PLR0917 - the loop's state, passed once
    selector: selectors.BaseSelector,
    pipes: Pipes,
    pending: memoryview,
    outcome: PumpOutcome,
    deadline_s: float,
    cancel: threading.Event | None,
    on_exit: Callable[[], object],
    on_stop: Callable[[], None],
) -> None:
    while True:
        now_s = time.monotonic()
        if outcome.exited_at_s is None and _stop_requested(outcome, now_s, deadline_s, cancel):
            on_stop()
            return
        if outcome.exited_at_s is not None and (
            len(selector.get_map()) == 0 or now_s - outcome.exited_at_s > _DRAIN_AFTER_EXIT_S
        ):
            return
        limit_s = outcome.exited_at_s + _DRAIN_AFTER_EXIT_S if outcome.exited_at_s is not None else deadline_s
        for key, _events in selector.select(timeout=max(min(_POLL_TICK_S, limit_s - now_s), 0.0)):
            if key.data is _EXITED:
                outcome.exited_at_s = time.monotonic()
                selector.unregister(key.fd)
                on_exit()  # whatever the program left behind dies now, so its pipes reach end of file
            elif key.fd == pipes.stdin:
                pending = _feed(selector, pipes, pending)
            else:
                _drain(selector, key)


def _register(
    selector: selectors.BaseSelector, pipes: Pipes, stdin: bytes, stdout: Capture, stderr: Capture
) -> None:
    if stdin and pipes.stdin is not None:
        os.set_blocking(pipes.stdin, False)
        selector.register(pipes.stdin, selectors.EVENT_WRITE)
    else:
        pipes.close_stdin()
    selector.register(pipes.stdout, selectors.EVENT_READ, stdout)
    if pipes.stderr is not None:
        selector.register(pipes.stderr, selectors.EVENT_READ, stderr)


def _stop_requested(
    outcome: PumpOutcome, now_s: float, deadline_s: float, cancel: threading.Event | None
) -> bool:
    if cancel is not None and cancel.is_set():
        outcome.cancelled = True
    elif now_s >= deadline_s:
        outcome.timed_out = True
    return outcome.cancelled or outcome.timed_out


def _feed(selector: selectors.BaseSelector, pipes: Pipes, pending: memoryview) -> memoryview:
    fd = pipes.stdin
    assert fd is not None  # noqa: S101 - registered only while open
    try:
        written = os.write(fd, pending[:_WRITE_CHUNK_BYTES])
    except BlockingIOError:
        return pending
    except (BrokenPipeError, ConnectionResetError):
        written = len(pending)  # the program stopped reading: that is its choice
    pending = pending[written:]
    if not pending:
        selector.unregister(fd)
        pipes.close_stdin()
    return pending


def _drain(selector: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
    capture: Capture = key.data
    chunk = os.read(key.fd, _READ_CHUNK_BYTES)
    if chunk:
        capture.add(chunk)
    else:
        selector.unregister(key.fd)
