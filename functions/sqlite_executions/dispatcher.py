"""The local stand-in for the state machine: runs the executions of the SQLite store, submit then poll.

One thread, in the process that serves `make run` (never in an HTTP worker: workers are replaced when they
hang, and an execution must not die with a request). Each tick it claims new executions (and those of
dead dispatchers), the oldest first and only as many as leave it at most `max_running` (the others wait
in the store for the next free place), cancels the runs of executions cancelled since the last tick, and makes the due submit
or poll call of each execution, with the waits and retries the state machine would use
(`functions.core.workflow`).

Restart: the runs of a local backend live in the dispatcher's process and die with it. A dispatcher that
takes over an execution first polls its run; when the backend no longer knows it (a local sandbox that
died with the old process) the run is started again from the stored request, once: an execution survives
one restart, and the next one fails it with `backend_unavailable`. A Kubernetes Job survives the server
and is simply polled again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from functions.core.errors import (
    INTERNAL_ERROR_CODE,
    BackendUnavailableError,
    ExecutionError,
    InvalidRequestError,
    NotFoundError,
    error_name,
)
from functions.core.executions import TIMED_OUT_ERROR, ExecutionFailure, ExecutionState
from functions.core.models import ExecuteRequest
from functions.core.workflow import DoneState, RunningState, WorkflowService, retry_rule_for
from functions.sqlite_executions.owners import OwnerLease
from functions.sqlite_executions.store import Claimed, SqliteExecutionStore

logger = logging.getLogger(__name__)

TICK_S = 0.1
# A run is started at most this often for one execution (the first time, and once after a restart).
MAX_RUN_ATTEMPTS = 2


@dataclass
class _Active:
    execution_id: str
    input_json: str
    started_at: float
    attempts: int
    state: RunningState | None = None  # None: not submitted (or to be submitted again)
    next_at: float = 0.0
    retries: int = 0  # consecutive transient failures of the current step


class Dispatcher:
    def __init__(
        self,
        store: SqliteExecutionStore,
        workflow: WorkflowService,
        lease: OwnerLease,
        *,
        max_running: int,
        execution_timeout_s: float,
        clock: Callable[[], float] = time.time,
        tick_s: float = TICK_S,
    ) -> None:
        self.store = store
        self.workflow = workflow
        self.lease = lease
        self.max_running = max_running
        self.execution_timeout_s = execution_timeout_s
        self.clock = clock
        self.tick_s = tick_s
        self._active: dict[str, _Active] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def owner(self) -> str:
        return self.lease.owner

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="executions-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and this process's runs; the executions stay RUNNING for the next dispatcher."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        for execution_id in list(self._active):
            self._cleanup(execution_id)
        self._active.clear()
        self.store.release(self.owner)
        self.lease.release()

    def tick(self) -> None:
        """One round: claim, notice cancellations, make every due call."""
        now = self.clock()
        room = self.max_running - len(self._active)
        if room > 0:
            for claimed in self.store.claim(self.owner, owner_is_dead=self.lease.is_dead, limit=room):
                self._active[claimed.execution_id] = _resumed(claimed, now)
        still_running = self.store.running_owned(self.owner)
        for execution_id in [known for known in self._active if known not in still_running]:
            self._forget(execution_id)  # cancelled meanwhile: its run must stop now
        for active in list(self._active.values()):
            if now - active.started_at > self.execution_timeout_s:
                failure = ExecutionFailure(
                    error=TIMED_OUT_ERROR, message="the execution outlived its timeout"
                )
                self._end(active, ExecutionState.TIMED_OUT, error=failure)
            elif active.next_at <= now:
                self._step(active, now)

    def _loop(self) -> None:
        while not self._stopping.wait(self.tick_s):
            try:
                self.tick()
            except Exception:  # a failed tick (a locked database, a bug) must not stop every execution
                logger.exception("executions dispatcher tick failed")

    def _step(self, active: _Active, now: float) -> None:
        try:
            if active.state is None:
                self._submit(active, now)
            else:
                self._poll(active, active.state, now)
            active.retries = 0
        except ExecutionError as exc:
            self._failed(active, exc, now)
        except Exception as exc:  # a bug: the execution fails, the dispatcher goes on
            logger.exception("execution step failed", extra={"execution_id": active.execution_id})
            self._fail(active, ExecutionFailure(error=INTERNAL_ERROR_CODE, message=f"{type(exc).__name__}"))

    def _submit(self, active: _Active, now: float) -> None:
        try:
            request = ExecuteRequest.model_validate_json(active.input_json)
        except ValidationError as exc:
            raise InvalidRequestError(
                f"the stored request is no longer valid: {exc.error_count()} errors"
            ) from exc
        active.attempts += 1
        active.state = self.workflow.submit(request, execution_name=active.execution_id)
        self.store.record_submitted(
            active.execution_id,
            self.owner,
            run_state=active.state.model_dump_json(),
            attempts=active.attempts,
        )
        active.next_at = now + active.state.wait_s

    def _poll(self, active: _Active, state: RunningState, now: float) -> None:
        try:
            outcome = self.workflow.poll(state)
        except NotFoundError:
            # The run ended with the process that started it (a restart): start it again, once.
            if active.attempts >= MAX_RUN_ATTEMPTS:
                raise BackendUnavailableError(
                    f"the run was interrupted {active.attempts} times by a server restart; not started again"
                ) from None
            active.state = None
            active.next_at = now
            return
        if isinstance(outcome, DoneState):
            self._end(active, ExecutionState.SUCCEEDED, result=outcome)
            return
        active.state = outcome
        active.next_at = now + outcome.wait_s

    def _failed(self, active: _Active, exc: ExecutionError, now: float) -> None:
        rule = retry_rule_for(error_name(exc.error_code))
        if rule is not None and active.retries < rule.max_attempts:
            active.retries += 1
            active.next_at = now + rule.delay_s(active.retries)
            return
        self._fail(active, ExecutionFailure(error=exc.error_code, message=exc.message))

    def _fail(self, active: _Active, failure: ExecutionFailure) -> None:
        self._end(active, ExecutionState.FAILED, error=failure)

    def _end(
        self,
        active: _Active,
        state: ExecutionState,
        *,
        result: DoneState | None = None,
        error: ExecutionFailure | None = None,
    ) -> None:
        if state is not ExecutionState.SUCCEEDED:
            self._cleanup(active.execution_id)
        self.store.finish(
            active.execution_id,
            self.owner,
            state,
            result=None if result is None else result.result,
            error=error,
        )
        self._active.pop(active.execution_id, None)

    def _forget(self, execution_id: str) -> None:
        self._active.pop(execution_id, None)
        self._cleanup(execution_id)

    def _cleanup(self, execution_id: str) -> None:
        # Never let a failed cleanup keep an execution from ending; a Job left behind is the sweeper's.
        try:
            self.workflow.cleanup(execution_name=execution_id)
        except ExecutionError as exc:
            logger.warning("could not stop a run", extra={"execution_id": execution_id, "error": exc.message})


def _resumed(claimed: Claimed, now: float) -> _Active:
    state = None if claimed.run_state is None else RunningState.model_validate_json(claimed.run_state)
    return _Active(
        execution_id=claimed.execution_id,
        input_json=claimed.input_json,
        started_at=claimed.started_at,
        attempts=claimed.attempts,
        state=state,
        next_at=now,
    )
