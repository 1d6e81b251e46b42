"""Sandboxes started ahead of demand: fully set up, waiting for their task, each used exactly once.

A warm sandbox is a cold one started earlier (same namespaces, uid lease, cgroup, filter, empty box), so a
run finds bubblewrap's start-up already paid. Any warm sandbox serves any language: the program and its
launch file are written into its box only when the task arrives. A pool that has served a compile step
also keeps one writable sandbox ready (a compile step's box takes its output). A sandbox is destroyed after
its one run and the pool refills in the background, while none of its sandboxes runs a program (starting and tearing
down sandboxes takes CPU the program would otherwise get, and its time is what the caller waits for), or at
once when none is left ready. An empty pool never makes a caller wait (it starts one on demand). A sandbox
idle for longer than `idle_s` is replaced, and one that died while idle is discarded, never used.
The pool starts filling at its first use, so a process that never runs a program (the local server's own
process, answering /health) holds no sandbox.

One long-lived thread starts every warm sandbox (bubblewrap's `--die-with-parent` follows the thread that
started it, so that thread lives as long as the pool) and tears down every released one, so removing a
finished sandbox's cgroup, box and uid lease is never on a response's path.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from functions.backends.local.sandbox import HostSetup, Sandbox
from functions.core.errors import ExecutionError

logger = logging.getLogger(__name__)

_RETRY_AFTER_FAILURE_S = 1.0


class WarmPool:
    """`acquire` a sandbox, warm when one of its kind is ready: up to `size` read-only ones (every run step),
    and one writable one (a compile step) once this pool has served a compile."""

    def __init__(self, host: HostSetup, *, size: int, idle_s: float) -> None:
        self.host = host
        self.size = size
        self.idle_s = idle_s
        # Ready sandboxes by kind (writable box or not), oldest first, with when each was started.
        self._ready: dict[bool, collections.deque[tuple[float, Sandbox]]] = {
            False: collections.deque(),
            True: collections.deque(),
        }
        self._released: list[Sandbox] = []
        self._changed = threading.Condition()
        self._closed = False
        self._in_use = False  # set by the first acquire: the pool fills from then on
        self._compiles = False  # set by the first writable acquire: one writable sandbox is kept ready
        self._running = 0  # sandboxes handed out and not yet released
        self._thread = threading.Thread(target=self._work_forever, name="warm-sandboxes", daemon=True)
        self._thread.start()

    def start(self) -> None:
        """Begin filling (the first acquire does it too)."""
        with self._changed:
            self._in_use = True
            self._changed.notify_all()

    def acquire(self, *, writable_box: bool) -> Sandbox:
        """A sandbox for one run; hand it back with `release`."""
        with self._changed:
            self._in_use = True
            self._compiles = self._compiles or writable_box
            self._running += 1
            self._changed.notify_all()
        try:
            return self._take(writable_box=writable_box) or Sandbox(self.host, writable_box=writable_box)
        except BaseException:
            with self._changed:
                self._running = max(0, self._running - 1)
                self._changed.notify_all()
            raise

    def release(self, sandbox: Sandbox) -> None:
        """Done with `sandbox`: nothing of it may run on (killed now), the rest is removed in the background."""
        sandbox.kill()
        with self._changed:
            self._running = max(0, self._running - 1)
            self._changed.notify_all()
            if not self._closed:
                self._released.append(sandbox)
                return
        sandbox.close()

    def ready_count(self, *, writable_box: bool = False) -> int:
        with self._changed:
            return len(self._ready[writable_box])

    def wait_until_ready(self, count: int, *, timeout_s: float, writable_box: bool = False) -> bool:
        """For tests and warm-up: block until `count` sandboxes of the kind wait (False on timeout)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._ready[writable_box]) >= count, timeout=timeout_s)

    def _take(self, *, writable_box: bool) -> Sandbox | None:
        with self._changed:
            ready = self._ready[writable_box]
            while ready:
                _, sandbox = ready.popleft()
                self._changed.notify_all()
                if sandbox.alive():
                    return sandbox
                self._discard(sandbox)
        return None

    def _work_forever(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._closed or self._needs_work(), timeout=self._next_expiry_s()
                )
                if self._closed:
                    return
                finished, self._released = self._released, []
                expired = self._expired()
            for sandbox in (*finished, *expired):
                self._discard(sandbox)
            if not self._start_one():
                time.sleep(_RETRY_AFTER_FAILURE_S)

    def _wanted(self, *, writable_box: bool) -> int:
        if not self._in_use or self.size == 0:
            return 0
        return (1 if self._compiles else 0) if writable_box else self.size

    def _short_kind(self) -> bool | None:
        """The kind to start next (read-only first), None when both are full."""
        return next(
            (kind for kind in (False, True) if len(self._ready[kind]) < self._wanted(writable_box=kind)), None
        )

    def _quiet(self) -> bool:
        """Background work may go ahead: no sandbox of this pool runs, or a kind in use has none ready."""
        return self._running == 0 or any(
            not self._ready[kind] for kind in (False, True) if self._wanted(writable_box=kind)
        )

    def _needs_work(self) -> bool:
        short = self._short_kind() is not None
        return bool(self._expired(peek=True)) or (self._quiet() and (bool(self._released) or short))

    def _next_expiry_s(self) -> float | None:
        oldest = [ready[0][0] for ready in self._ready.values() if ready]
        if not oldest:
            return None
        return max(0.0, min(oldest) + self.idle_s - time.monotonic())

    def _expired(self, *, peek: bool = False) -> list[Sandbox]:
        now_s = time.monotonic()
        expired = []
        for kind, ready in self._ready.items():
            old = [sandbox for started_s, sandbox in ready if now_s - started_s > self.idle_s]
            if not peek and old:
                self._ready[kind] = collections.deque(item for item in ready if item[1] not in old)
            expired += old
        return expired

    def _start_one(self) -> bool:
        with self._changed:
            kind = self._short_kind()
            if kind is None or not self._quiet():
                return True
        try:
            sandbox = Sandbox(self.host, writable_box=kind)
        except ExecutionError as exc:
            logger.warning("could not start a warm sandbox: %s", exc.message)
            return False
        with self._changed:
            if self._closed:
                self._discard(sandbox)
                return True
            self._ready[kind].append((time.monotonic(), sandbox))
            self._changed.notify_all()
        return True

    @staticmethod
    def _discard(sandbox: Sandbox) -> None:
        sandbox.close()

    def close(self) -> None:
        """Stop refilling and destroy every idle and every released sandbox."""
        with self._changed:
            self._closed = True
            idle = [sandbox for ready in self._ready.values() for _, sandbox in ready] + self._released
            for ready in self._ready.values():
                ready.clear()
            self._released = []
            self._changed.notify_all()
        self._thread.join()
        for sandbox in idle:
            sandbox.close()
