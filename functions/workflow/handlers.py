"""The state machine's three tasks. Each parses its input, makes one service call, returns a model.

- `submit`: {request: <the /execute body>, execution_name} -> RunningState (run id, judging plan,
  deadline, first wait). Validates exactly like POST /execute, with the asynchronous limits.
- `poll`: RunningState -> RunningState with the next wait, or DoneState {done, result} once it ended.
- `cleanup`: {execution_name} -> {} after stopping whatever run the execution started.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions import wiring
from functions.core.models import ExecuteRequest
from functions.core.workflow import RunningState
from functions.observability import logger
from functions.workflow.errors import named_errors

# Step Functions' limits on an execution name.
MAX_EXECUTION_NAME_CHARS = 80
# What a parent workflow adds to its child's input so the console links the two executions.
STARTED_BY_KEY = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"


class SubmitInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: ExecuteRequest
    execution_name: str = Field(min_length=1, max_length=MAX_EXECUTION_NAME_CHARS)

    @field_validator("request", mode="before")
    @classmethod
    def _without_parent_link(cls, value: Any) -> Any:
        if isinstance(value, dict) and STARTED_BY_KEY in value:
            return {key: item for key, item in value.items() if key != STARTED_BY_KEY}
        return value


class CleanupInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    execution_name: str = Field(min_length=1, max_length=MAX_EXECUTION_NAME_CHARS)


@logger.inject_lambda_context(clear_state=True)
def submit(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda's signature
    with named_errors():
        task = SubmitInput.model_validate(event)
        logger.append_keys(execution_name=task.execution_name)
        state = wiring.get_workflow().submit(task.request, execution_name=task.execution_name)
    logger.info("run submitted", extra={"run_id": state.run_id, "language": state.plan.language})
    return state.model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
def poll(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda's signature
    with named_errors():
        state = RunningState.model_validate(event)
        logger.append_keys(run_id=state.run_id)
        outcome = wiring.get_workflow().poll(state)
    if outcome.done:
        logger.info("run finished", extra={"verdict": outcome.result.verdict.value})
    return outcome.model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
def cleanup(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda's signature
    with named_errors():
        task = CleanupInput.model_validate(event)
        wiring.get_workflow().cleanup(execution_name=task.execution_name)
    logger.info("run cleaned up", extra={"execution_name": task.execution_name})
    return {}
