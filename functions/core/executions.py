"""Asynchronous executions (`/executions`): start one, describe it, cancel it.

An `ExecutionStore` keeps them and runs them: in AWS the Step Functions state machine is the store (an
execution is a state machine execution named by its id); locally a SQLite file under the data dir, whose
executions the local dispatcher runs (functions/sqlite_executions). Both run the same steps
(`functions.core.workflow`), so an execution's `result` is exactly what `/execute` would have answered.

Ids are 32 lowercase hex characters: random, or derived from the client's `Idempotency-Key` and who sent
it, so a retried POST names the same execution (also after it finished) and two clients' keys never meet.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from functions.core.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from functions.core.languages import LanguageRegistry
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.runs import RUN_ID_CHARS
from functions.core.spec import LimitPolicy, new_execution_id, prepare_run
from functions.core.workflow import MAX_STATE_BYTES

EXECUTION_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_IDEMPOTENCY_KEY_CHARS = 255
# The error codes of the two endings that are not failures of a run.
CANCELLED_ERROR = "cancelled"
TIMED_OUT_ERROR = "timed_out"
_EXECUTION_ID = re.compile(EXECUTION_ID_PATTERN)


class ExecutionState(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"


class ExecutionFailure(BaseModel):
    """Why an execution did not succeed: an error code of the API's error table and a sentence."""

    error: str
    message: str


class ExecutionView(BaseModel):
    """Body of GET /executions/{execution_id}."""

    execution_id: str
    state: ExecutionState
    result: ExecuteResponse | None = Field(
        default=None, description="SUCCEEDED only: exactly the POST /execute response"
    )
    error: ExecutionFailure | None = Field(default=None, description="FAILED, CANCELLED or TIMED_OUT")
    created_at: datetime
    finished_at: datetime | None = None


class ExecutionAccepted(BaseModel):
    """Body of the 202 answer to POST /executions (the same URL is in its Location header)."""

    execution_id: str
    status_url: str


class ExecutionStore(Protocol):
    def start(self, execution_id: str, input_json: str) -> ExecutionView:
        """Start an execution of `input_json` (an /execute body), or describe the execution of that id
        when it exists with the same input; IdempotencyKeyReusedError when its input differs.
        CapacityExhaustedError when no execution can start now."""
        ...

    def describe(self, execution_id: str) -> ExecutionView:
        """NotFoundError for an unknown id."""
        ...

    def stop(self, execution_id: str) -> ExecutionView:
        """Cancel a running execution, its run included; a finished one is described unchanged."""
        ...


@dataclass(frozen=True, slots=True)
class AsyncExecutionService:
    store: ExecutionStore
    registry: LanguageRegistry
    policy: LimitPolicy  # the asynchronous entry point's limits

    def start(self, request: ExecuteRequest, *, idempotency_key: str | None, caller: str) -> ExecutionView:
        """Validate exactly as the run will be validated, then start it: bad input starts nothing."""
        input_json = self.checked_input(request)
        if idempotency_key is None:
            execution_id = new_execution_id()
        else:
            execution_id = execution_id_for(idempotency_key, caller=caller)
        return self.store.start(execution_id, input_json)

    def checked_input(self, request: ExecuteRequest) -> str:
        """The execution's input once `request` passed every check its run will make (raises otherwise)."""
        prepare_run(request, self.registry, self.policy)
        input_json = execution_input(request)
        size_bytes = len(input_json.encode("utf-8"))
        if size_bytes > MAX_STATE_BYTES:
            raise PayloadTooLargeError(
                f"the request is {size_bytes} bytes as JSON; an asynchronous execution takes at most "
                f"{MAX_STATE_BYTES} (Step Functions' input limit): send a large stdin to POST /execute"
            )
        return input_json

    def describe(self, execution_id: str) -> ExecutionView:
        return self.store.describe(checked_id(execution_id))

    def cancel(self, execution_id: str) -> ExecutionView:
        return self.store.stop(checked_id(execution_id))


def execution_input(request: ExecuteRequest) -> str:
    """The execution's input: the /execute body in one canonical form, so a retry compares equal."""
    return request.model_dump_json(exclude_none=True)


def execution_id_for(idempotency_key: str, *, caller: str) -> str:
    if not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidRequestError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters")
    scoped = f"{len(caller)}:{caller}:{idempotency_key}".encode()
    return hashlib.sha256(scoped).hexdigest()[:RUN_ID_CHARS]


def checked_id(execution_id: str) -> str:
    """Anything that cannot be an execution id is an unknown one (404), never a store error."""
    if not _EXECUTION_ID.match(execution_id):
        raise NotFoundError(f"no execution {execution_id[:80]!r}")
    return execution_id
