"""Waiting on the asynchronous path's state, which lives in SQLite or moto and signals nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

WAIT_S = 60.0
_POLL_S = 0.05


def wait_for(observe: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float = WAIT_S) -> T:
    """Observe until `done(observation)`; the observation then. TimeoutError with the last one."""
    deadline_s = time.monotonic() + timeout_s
    while True:
        observation = observe()
        if done(observation):
            return observation
        if time.monotonic() > deadline_s:
            raise TimeoutError(f"not reached within {timeout_s} s; last observed: {observation!r}")
        time.sleep(_POLL_S)
