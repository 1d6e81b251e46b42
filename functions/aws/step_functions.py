"""The AWS execution store: every asynchronous execution is an execution of our state machine.

The state machine is the store (no table of our own): StartExecution with the execution id as its name,
DescribeExecution to read it back, StopExecution to cancel it. A name is unique per state machine for 90
days. StartExecution with the name and input of a *running* execution succeeds and returns it; a *closed*
execution, or a different input, answers ExecutionAlreadyExists: the existing execution is then described
and returned when its input is ours, and the key's reuse refused when it is not.

A stopped execution runs no Catch, so `stop` cleans up the run itself (`on_stopped`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.core.errors import (
    INTERNAL_ERROR_CODE,
    BackendUnavailableError,
    IdempotencyKeyReusedError,
    NotFoundError,
    error_code_for_name,
)
from functions.core.executions import (
    CANCELLED_ERROR,
    TIMED_OUT_ERROR,
    ExecutionFailure,
    ExecutionState,
    ExecutionView,
)
from functions.core.models import ExecuteResponse

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_stepfunctions.type_defs import DescribeExecutionOutputTypeDef

# The API answers within API Gateway's 29 s even when Step Functions is slow.
CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
STOP_ERROR = "Cancelled"
STOP_CAUSE = "cancelled by DELETE /executions/{execution_id}"
T = TypeVar("T")
_STATES = {
    "RUNNING": ExecutionState.RUNNING,
    "PENDING_REDRIVE": ExecutionState.RUNNING,
    "SUCCEEDED": ExecutionState.SUCCEEDED,
    "FAILED": ExecutionState.FAILED,
    "TIMED_OUT": ExecutionState.TIMED_OUT,
    "ABORTED": ExecutionState.CANCELLED,
}


class StepFunctionsStore:
    def __init__(
        self, client: SFNClient, state_machine_arn: str, *, on_stopped: Callable[[str], None]
    ) -> None:
        self._client = client
        self._state_machine_arn = state_machine_arn
        self._on_stopped = on_stopped

    def start(self, execution_id: str, input_json: str) -> ExecutionView:
        try:
            started = _call(
                "StartExecution",
                lambda: self._client.start_execution(
                    stateMachineArn=self._state_machine_arn, name=execution_id, input=input_json
                ),
                passthrough="ExecutionAlreadyExists",
            )
        except ClientError as exc:
            existing = self._describe(execution_id)
            if existing["input"] != input_json:
                raise IdempotencyKeyReusedError(
                    "this Idempotency-Key already started an execution of a different request"
                ) from exc
            return view_of(execution_id, existing)
        return ExecutionView(
            execution_id=execution_id, state=ExecutionState.RUNNING, created_at=started["startDate"]
        )

    def describe(self, execution_id: str) -> ExecutionView:
        return view_of(execution_id, self._describe(execution_id))

    def stop(self, execution_id: str) -> ExecutionView:
        current = self.describe(execution_id)
        if current.state is not ExecutionState.RUNNING:
            return current
        cause = STOP_CAUSE.format(execution_id=execution_id)
        stopped = _call(
            "StopExecution",
            lambda: self._client.stop_execution(
                executionArn=self._execution_arn(execution_id), error=STOP_ERROR, cause=cause
            ),
        )
        self._on_stopped(execution_id)
        # Stopped once StopExecution answers (a DescribeExecution may lag behind it: no need to ask).
        return current.model_copy(
            update={
                "state": ExecutionState.CANCELLED,
                "finished_at": stopped.get("stopDate") or datetime.now(tz=UTC),
                "error": _failure(ExecutionState.CANCELLED, STOP_ERROR, cause),
            }
        )

    def _describe(self, execution_id: str) -> DescribeExecutionOutputTypeDef:
        try:
            return _call(
                "DescribeExecution",
                lambda: self._client.describe_execution(executionArn=self._execution_arn(execution_id)),
                passthrough="ExecutionDoesNotExist",
            )
        except ClientError as exc:
            raise NotFoundError(f"no execution {execution_id!r}") from exc

    def _execution_arn(self, execution_id: str) -> str:
        # arn:aws:states:<region>:<account>:stateMachine:<name> -> ...:execution:<name>:<execution name>
        return self._state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + execution_id


def view_of(execution_id: str, described: DescribeExecutionOutputTypeDef) -> ExecutionView:
    state = _STATES.get(described["status"], ExecutionState.FAILED)
    result = None
    if state is ExecutionState.SUCCEEDED:
        result = ExecuteResponse.model_validate_json(described.get("output") or "{}")
    return ExecutionView(
        execution_id=execution_id,
        state=state,
        result=result,
        error=_failure(state, described.get("error", ""), described.get("cause", "")),
        created_at=described["startDate"],
        finished_at=described.get("stopDate"),
    )


def _failure(state: ExecutionState, error: str, cause: str) -> ExecutionFailure | None:
    if state is ExecutionState.CANCELLED:
        return ExecutionFailure(error=CANCELLED_ERROR, message=cause or "the execution was stopped")
    if state is ExecutionState.TIMED_OUT:
        return ExecutionFailure(
            error=TIMED_OUT_ERROR, message="the execution outlived the state machine's timeout"
        )
    if state is not ExecutionState.FAILED:
        return None
    message = lambda_error_message(cause)
    code = error_code_for_name(error)
    if code is None:  # a failure of the platform (States.*, Lambda.*), not one of ours
        return ExecutionFailure(error=INTERNAL_ERROR_CODE, message=f"{error}: {message}".strip(": "))
    return ExecutionFailure(error=code, message=message)


def lambda_error_message(cause: str) -> str:
    """A Lambda task's Cause is the function's error document as JSON; its errorMessage is the sentence."""
    try:
        document: Any = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return cause


def _call(call: str, request: Callable[[], T], *, passthrough: str = "") -> T:
    """One Step Functions call (botocore already retried); ClientError `passthrough` is left to the caller,
    every other failure is BackendUnavailableError."""
    try:
        return request()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if passthrough and code == passthrough:
            raise
        raise BackendUnavailableError(f"Step Functions {call} failed: {code or exc}") from exc
    except BotoCoreError as exc:
        raise BackendUnavailableError(f"Step Functions {call} failed: {exc}") from exc


def create_store(
    state_machine_arn: str, *, region: str | None, on_stopped: Callable[[str], None]
) -> StepFunctionsStore:
    client: SFNClient = boto3.client("stepfunctions", region_name=region, config=CLIENT_CONFIG)
    return StepFunctionsStore(client, state_machine_arn, on_stopped=on_stopped)
