"""/executions as deployed: the API's store is the synthesized state machine (in moto's executor), whose
tasks run our handlers on the local sandbox. The API and the tasks share this process, as they share the
backend in AWS (the API's cancel deletes the run itself: a stopped execution runs no Catch)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions import wiring
from functions.aws.step_functions import StepFunctionsStore
from functions.core.executions import AsyncExecutionService, ExecutionState
from functions.core.languages import load_registry
from functions.settings import Settings
from tests.async_support import wait_for
from tests.conftest import Invoke
from tests.infrastructure.conftest import Synth
from tests.infrastructure.state_machine_support import (
    REGION,
    Deployed,
    LocalWorkflow,
    deploy,
    local_workflow,
    moto_step_functions,
    text_request,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

SLEEPER = text_request("python", "import time\ntime.sleep(30)", timeout=60)


@pytest.fixture
def workflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWorkflow]:
    yield from local_workflow(monkeypatch)


@pytest.fixture
def machine(dev_synth: Synth, monkeypatch: pytest.MonkeyPatch, workflow: LocalWorkflow) -> Iterator[Deployed]:
    with moto_step_functions(monkeypatch):
        yield deploy(dev_synth)


@pytest.fixture
def store(machine: Deployed, workflow: LocalWorkflow, monkeypatch: pytest.MonkeyPatch) -> StepFunctionsStore:
    """What `wiring.build_executions` makes when EXEC_STATE_MACHINE_ARN is set, on moto's client."""
    store = StepFunctionsStore(
        boto3.client("stepfunctions", region_name=REGION),
        machine.state_machine_arn,
        on_stopped=lambda execution_id: workflow.service.cleanup(execution_name=execution_id),
    )
    settings: Settings = workflow.settings
    service = AsyncExecutionService(
        store=store, registry=load_registry(settings.runners_dir), policy=wiring.async_policy(settings)
    )
    monkeypatch.setattr(wiring, "get_executions", lambda: service)
    return store


def finished(invoke: Invoke, execution_id: str) -> dict[str, Any]:
    view: dict[str, Any] = wait_for(
        lambda: invoke("GET", f"/executions/{execution_id}").json(), lambda view: view["state"] != "RUNNING"
    )
    return view


def test_post_then_get_gives_the_execute_response_of_the_state_machine(
    invoke: Invoke, store: StepFunctionsStore, machine: Deployed
) -> None:
    body = text_request("python", "print(input()[::-1])", stdin="olleh")
    accepted = invoke("POST", "/executions", body)
    execution_id = accepted.json()["execution_id"]
    view = finished(invoke, execution_id)
    assert accepted.status == 202
    assert view["state"] == "SUCCEEDED"
    assert view["result"]["stdout"] == "hello\n"
    assert view["result"]["execution_id"] == execution_id  # the run is named after the execution
    assert view["finished_at"] is not None
    # The execution is the state machine's, named by the id, its input the canonical /execute body
    described = machine.client.describe_execution(
        executionArn=machine.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + execution_id
    )
    assert json.loads(described["input"])["language"] == "python"


def test_a_judge0_token_is_a_state_machine_execution(invoke: Invoke, store: StepFunctionsStore) -> None:
    # Given a Judge0 submission made without waiting, as deployed
    body = {"source_code": "print(input()[::-1])", "language_id": 71, "stdin": "olleh"}
    token = invoke("POST", "/judge0/submissions", body).json()["token"]
    # When it is polled by its token
    answer: dict[str, Any] = wait_for(
        lambda: invoke("GET", f"/judge0/submissions/{token}?fields=status_id,stdout").json(),
        lambda answer: answer["status_id"] > 2,
    )
    # Then it is the state machine's execution, done
    assert answer == {"status_id": 3, "stdout": "hello\n"}
    assert finished(invoke, uuid.UUID(token).hex)["state"] == "SUCCEEDED"


def test_the_same_key_names_one_execution_running_or_closed(
    invoke: Invoke, store: StepFunctionsStore
) -> None:
    body = text_request("python", "print(1)")
    key = {"Idempotency-Key": "job-7"}
    first = invoke("POST", "/executions", body, headers=key)
    while_running = invoke("POST", "/executions", body, headers=key)  # StartExecution's own idempotency
    finished(invoke, first.json()["execution_id"])
    after_closing = invoke("POST", "/executions", body, headers=key)  # ExecutionAlreadyExists -> described
    reused = invoke("POST", "/executions", text_request("python", "print(2)"), headers=key)
    assert first.status == while_running.status == after_closing.status == 202
    assert first.json() == while_running.json() == after_closing.json()
    assert (reused.status, reused.json()["error"]) == (422, "idempotency_key_reused")


def test_delete_stops_the_execution_and_its_sandbox(
    invoke: Invoke, store: StepFunctionsStore, workflow: LocalWorkflow
) -> None:
    execution_id = invoke("POST", "/executions", SLEEPER).json()["execution_id"]
    wait_for(workflow.runs.active, lambda active: len(active) == 1)
    cancelled = invoke("DELETE", f"/executions/{execution_id}")
    assert cancelled.status == 200
    assert cancelled.json()["state"] == "CANCELLED"
    assert cancelled.json()["error"]["error"] == "cancelled"
    # No Catch runs for a stopped execution: the API's cancel stopped the run itself
    assert workflow.runs.active() == []
    # A second DELETE answers the execution as it is. (Its state is not checked here: moto's executor,
    # unlike Step Functions, goes on running a stopped execution's next state, which then fails.)
    assert invoke("DELETE", f"/executions/{execution_id}").status == 200


def test_an_unknown_execution_is_404(invoke: Invoke, store: StepFunctionsStore) -> None:
    assert invoke("GET", "/executions/" + "0" * 32).status == 404


def test_a_failed_execution_reads_as_the_error_code_and_its_sentence(
    store: StepFunctionsStore, machine: Deployed
) -> None:
    # Given an execution another workflow started with a body the API would have refused
    arn = machine.start(text_request("python", "print(1)", timeout=5000), name="f" * 32)
    machine.wait(arn)
    # When the API describes it
    view = store.describe("f" * 32)
    # Then it reads as the error table's code and the task's own sentence, not the Lambda error document
    assert view.state is ExecutionState.FAILED
    assert view.error is not None
    assert view.error.error == "invalid_request"
    assert view.error.message.startswith("timeout 5000 s is above the ceiling")
