"""The workflow tasks' edges: input parsing and the names their errors carry (Retry and Catch match on them)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.errors import BackendUnavailableError, CapacityExhaustedError, UnknownLanguageError
from functions.devserver.server import LocalLambdaContext
from functions.workflow import handlers
from functions.workflow.errors import WorkflowTaskError, error_class, named_errors

CONTEXT = LocalLambdaContext(request_id="task")


@pytest.mark.parametrize(
    ("raised", "name"),
    [
        pytest.param(BackendUnavailableError("api down"), "BackendUnavailable", id="transient"),
        pytest.param(CapacityExhaustedError("quota"), "CapacityExhausted", id="capacity"),
        pytest.param(UnknownLanguageError("cobol"), "UnknownLanguage", id="permanent"),
        pytest.param(KeyError("bug"), "InternalError", id="bug"),
    ],
)
def test_a_service_error_leaves_the_task_under_its_workflow_name(raised: Exception, name: str) -> None:
    with pytest.raises(WorkflowTaskError) as caught, named_errors():
        raise raised
    assert type(caught.value).__name__ == name
    # One class per error code, so Retry and Catch always see the same name for the same error
    assert type(caught.value) is error_class(_snake_case(name))


def _snake_case(name: str) -> str:
    return "".join("_" + char.lower() if char.isupper() else char for char in name).lstrip("_")


BAD_INPUTS: dict[str, tuple[Any, Any]] = {
    "submit-without-request": (handlers.submit, {"execution_name": "x"}),
    "submit-unknown-field": (
        handlers.submit,
        {"request": {"language": "python", "code": "eA==", "priority": 1}, "execution_name": "x"},
    ),
    "submit-name-too-long": (
        handlers.submit,
        {"request": {"language": "python", "code": "eA=="}, "execution_name": "x" * 81},
    ),
    "poll-not-a-state": (handlers.poll, {"Error": "X", "Cause": "y"}),
    "cleanup-without-name": (handlers.cleanup, {}),
}


@pytest.mark.parametrize(("handler", "event"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_malformed_task_input_is_a_permanent_invalid_request(handler: Any, event: dict[str, Any]) -> None:
    with pytest.raises(WorkflowTaskError) as caught:
        handler(event, CONTEXT)
    assert type(caught.value).__name__ == "InvalidRequest"
    assert "invalid request:" in str(caught.value)


def test_the_parent_link_a_calling_workflow_adds_is_not_part_of_the_request() -> None:
    parsed = handlers.SubmitInput.model_validate(
        {
            "request": {
                "language": "python",
                "code": "eA==",
                "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:aws:states:eu-west-1:1:execution:parent:1",
            },
            "execution_name": "child",
        }
    )
    assert parsed.request.language == "python"
    assert "AWS_STEP_FUNCTIONS" not in parsed.request.model_dump_json()
