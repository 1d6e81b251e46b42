"""Waiting on the asynchronous path's state, which lives in SQLite or moto and signals nothing."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from functions.sqlite_executions.store import DATABASE_NAME
from functions.wiring import local_executions_dir

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


def stored_executions(data_dir: Path) -> int:
    """How many local executions the SQLite store under `data_dir` holds."""
    with sqlite3.connect(local_executions_dir(data_dir) / DATABASE_NAME) as db:
        (count,) = db.execute("SELECT count(*) FROM executions").fetchone()
    return int(count)
