"""The local execution store: one SQLite file under `EXEC_DATA_DIR`, shared by every process of `make run`.

The HTTP workers only insert, read and cancel rows; the dispatcher (functions/sqlite_executions/dispatcher.py)
claims the running ones, oldest first and as many as it may run at once, and runs them: an execution
beyond that waits in its row (still RUNNING) until a dispatcher has room for it. SQLite is the shared truth
between processes: a POST on one worker
and a GET on another see the same row, and a restarted server finds its executions where they were.
Writes are short `BEGIN IMMEDIATE` transactions, so the capacity check and the insert are one step.
The request (code, stdin) is kept only while its execution runs.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from functions.core.errors import CapacityExhaustedError, IdempotencyKeyReusedError, NotFoundError
from functions.core.executions import (
    CANCELLED_ERROR,
    ExecutionFailure,
    ExecutionState,
    ExecutionView,
)
from functions.core.models import ExecuteResponse

DATABASE_NAME = "executions.sqlite3"
BUSY_TIMEOUT_S = 10.0
CANCEL_MESSAGE = "cancelled by DELETE /executions/{execution_id}"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    input_sha256 TEXT NOT NULL,
    input_json TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_state TEXT,
    result_json TEXT,
    error TEXT,
    error_message TEXT,
    started_at REAL
);
CREATE INDEX IF NOT EXISTS executions_running ON executions (state) WHERE state = 'RUNNING';
"""
# Tells whether the dispatcher named by an owner id is gone (functions/sqlite_executions/owners.py).
OwnerCheck = Callable[[str], bool]
_VIEW_COLUMNS = "execution_id, state, created_at, finished_at, result_json, error, error_message"
# Columns added after the first schema: a file written by an older version gets them on open.
_ADDED_COLUMNS = {"started_at": "REAL"}


@dataclass(frozen=True, slots=True)
class Claimed:
    """A running execution a dispatcher has just taken over (new, or left by a dead owner)."""

    execution_id: str
    input_json: str
    started_at: float  # when a dispatcher first took it: its time limit counts from there, not its wait
    attempts: int
    run_state: str | None  # the workflow's RunningState once the run was submitted


class SqliteExecutionStore:
    def __init__(self, directory: Path, *, max_unfinished: int, retry_after_s: int) -> None:
        """`max_unfinished`: executions admitted and not ended (running, or waiting for a dispatcher)."""
        self.path = _private_file(directory, DATABASE_NAME)
        self.max_unfinished = max_unfinished
        self.retry_after_s = retry_after_s
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(executions)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in present:
                    db.execute(f"ALTER TABLE executions ADD COLUMN {name} {kind}")

    # --- the ExecutionStore port (the HTTP workers) ---------------------------------------------------

    def start(self, execution_id: str, input_json: str) -> ExecutionView:
        digest = hashlib.sha256(input_json.encode("utf-8")).hexdigest()
        with self._write() as db:
            row = db.execute(
                "SELECT input_sha256 FROM executions WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise IdempotencyKeyReusedError(
                        "this Idempotency-Key already started an execution of a different request"
                    )
            else:
                (running,) = db.execute("SELECT count(*) FROM executions WHERE state = 'RUNNING'").fetchone()
                if running >= self.max_unfinished:
                    raise CapacityExhaustedError(
                        f"{running} executions are running or waiting to run, the most this server keeps "
                        "at once; retry later",
                        retry_after_s=self.retry_after_s,
                    )
                db.execute(
                    "INSERT INTO executions (execution_id, input_sha256, input_json, state, created_at)"
                    " VALUES (?, ?, ?, 'RUNNING', ?)",
                    (execution_id, digest, input_json, time.time()),
                )
        return self.describe(execution_id)

    def describe(self, execution_id: str) -> ExecutionView:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_VIEW_COLUMNS} FROM executions WHERE execution_id = ?",  # noqa: S608 - constant columns
                (execution_id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        return _view(row)

    def stop(self, execution_id: str) -> ExecutionView:
        """Mark it cancelled; its dispatcher sees that on its next tick and kills the run."""
        with self._write() as db:
            db.execute(
                "UPDATE executions SET state = 'CANCELLED', finished_at = ?, error = ?, error_message = ?,"
                " input_json = NULL WHERE execution_id = ? AND state = 'RUNNING'",
                (
                    time.time(),
                    CANCELLED_ERROR,
                    CANCEL_MESSAGE.format(execution_id=execution_id),
                    execution_id,
                ),
            )
        return self.describe(execution_id)

    # --- the dispatcher's side ------------------------------------------------------------------------

    def claim(self, owner: str, *, owner_is_dead: OwnerCheck, limit: int | None = None) -> list[Claimed]:
        """Take running executions nobody owns, or whose owner is dead: the oldest first, `limit` at most."""
        with self._connect() as db:
            candidates = db.execute(
                "SELECT execution_id, owner FROM executions WHERE state = 'RUNNING'"
                " AND (owner IS NULL OR owner != ?) ORDER BY created_at, execution_id",
                (owner,),
            ).fetchall()
        claimed: list[Claimed] = []
        for execution_id, previous in candidates:
            if limit is not None and len(claimed) >= limit:
                break
            if previous is not None and not owner_is_dead(previous):
                continue
            with self._write() as db:
                taken = db.execute(
                    "UPDATE executions SET owner = ?, started_at = coalesce(started_at, ?)"
                    " WHERE execution_id = ? AND state = 'RUNNING' AND owner IS ?",
                    (owner, time.time(), execution_id, previous),
                ).rowcount
                row = db.execute(
                    "SELECT input_json, started_at, attempts, run_state FROM executions WHERE execution_id = ?",
                    (execution_id,),
                ).fetchone()
            if taken and row is not None and row[0] is not None:
                claimed.append(Claimed(execution_id, row[0], row[1], row[2], row[3]))
        return claimed

    def running_owned(self, owner: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT execution_id FROM executions WHERE state = 'RUNNING' AND owner = ?", (owner,)
            ).fetchall()
        return {row[0] for row in rows}

    def record_submitted(self, execution_id: str, owner: str, *, run_state: str, attempts: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE executions SET run_state = ?, attempts = ? WHERE execution_id = ? AND owner = ?"
                " AND state = 'RUNNING'",
                (run_state, attempts, execution_id, owner),
            )

    def finish(
        self,
        execution_id: str,
        owner: str,
        state: ExecutionState,
        *,
        result: ExecuteResponse | None = None,
        error: ExecutionFailure | None = None,
    ) -> bool:
        """Record the end; False when it had ended already (cancelled meanwhile): a cancel always wins."""
        with self._write() as db:
            updated = db.execute(
                "UPDATE executions SET state = ?, finished_at = ?, result_json = ?, error = ?, error_message = ?,"
                " input_json = NULL, run_state = NULL WHERE execution_id = ? AND owner = ? AND state = 'RUNNING'",
                (
                    state.value,
                    time.time(),
                    None if result is None else result.model_dump_json(),
                    None if error is None else error.error,
                    None if error is None else error.message,
                    execution_id,
                    owner,
                ),
            ).rowcount
        return bool(updated)

    def release(self, owner: str) -> None:
        """Hand this owner's running executions back, for the next dispatcher to resume at once."""
        with self._write() as db:
            db.execute("UPDATE executions SET owner = NULL WHERE owner = ? AND state = 'RUNNING'", (owner,))

    def count(self) -> int:
        with self._connect() as db:
            (total,) = db.execute("SELECT count(*) FROM executions").fetchone()
        return int(total)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per call: callers are threads and processes, and opening one costs microseconds.
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def _view(row: tuple[object, ...]) -> ExecutionView:
    execution_id, state, created_at, finished_at, result_json, error, error_message = row
    return ExecutionView(
        execution_id=str(execution_id),
        state=ExecutionState(str(state)),
        result=None if result_json is None else ExecuteResponse.model_validate_json(str(result_json)),
        error=None if error is None else ExecutionFailure(error=str(error), message=str(error_message or "")),
        created_at=_time(created_at),
        finished_at=None if finished_at is None else _time(finished_at),
    )


def _time(epoch_s: object) -> datetime:
    return datetime.fromtimestamp(float(str(epoch_s)), tz=UTC)


def _private_file(directory: Path, name: str) -> Path:
    """`directory/name`, the directory ours and closed to others (the rows hold users' code)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.lstat()
    if directory.is_symlink() or info.st_uid != os.geteuid():
        raise RuntimeError(f"{directory} must be a directory owned by uid {os.geteuid()}")
    directory.chmod(0o700)
    path = directory / name
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    return path
