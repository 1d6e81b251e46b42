"""Bounded concurrency: a fixed number of sandbox slots; a caller waits a bounded time, never forever."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from functions.core.errors import CapacityExhaustedError


class SlotPool:
    def __init__(self, *, size: int, queue_wait_s: float) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one slot")
        self.size = size
        self.queue_wait_s = queue_wait_s
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def slot(self, *, wait_s: float | None = None) -> Iterator[None]:
        """Hold one slot for the `with` body; CapacityExhaustedError after waiting `wait_s` at most."""
        timeout_s = self.queue_wait_s if wait_s is None else min(wait_s, self.queue_wait_s)
        if not self._slots.acquire(timeout=max(timeout_s, 0.0)):
            raise CapacityExhaustedError(
                f"all {self.size} sandbox slots are busy; retry shortly",
                retry_after_s=max(1, math.ceil(self.queue_wait_s)),
            )
        try:
            yield
        finally:
            self._slots.release()
