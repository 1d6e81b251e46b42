"""The synthesized state machine, executed by moto, its tasks run by our handlers on the local sandbox.

Waits are shortened by configuration only: Poll reads EXEC_ASYNC_POLL_INITIAL_S/MAX_S (0 and 1 s here);
the definition is the one `make synth` writes. The retries of BackendUnavailable really wait (1 s, 2 s).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions import wiring
from functions.core.errors import DeadlineExceededError
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.verdicts import Verdict
from functions.core.workflow import MAX_STATE_BYTES
from tests.infrastructure.conftest import REPO_ROOT, Synth
from tests.infrastructure.state_machine_support import (
    Deployed,
    LocalWorkflow,
    deploy,
    local_workflow,
    moto_step_functions,
    text_request,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

PARENT_WORKFLOW = REPO_ROOT / "docs" / "examples" / "parent-workflow.asl.json"


@pytest.fixture
def workflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWorkflow]:
    yield from local_workflow(monkeypatch)


@pytest.fixture
def machine(dev_synth: Synth, monkeypatch: pytest.MonkeyPatch, workflow: LocalWorkflow) -> Iterator[Deployed]:
    with moto_step_functions(monkeypatch):
        yield deploy(dev_synth)


def succeeded(described: dict[str, Any]) -> ExecuteResponse:
    assert described["status"] == "SUCCEEDED", described
    return ExecuteResponse.model_validate_json(described["output"])


# --- results: every verdict is a SUCCEEDED execution ----------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "verdict", "stdout"),
    [
        pytest.param(
            text_request("python", "print(input().upper())", stdin="hello"),
            Verdict.ACCEPTED,
            "HELLO\n",
            id="accepted",
        ),
        pytest.param(
            text_request("cpp", "int main( { return 0; }"),
            Verdict.COMPILATION_ERROR,
            "",
            id="compilation-error",
        ),
        pytest.param(
            text_request("python", "while True: pass", timeout=1),
            Verdict.TIME_LIMIT_EXCEEDED,
            "",
            id="time-limit",
        ),
        pytest.param(
            text_request("python", "print(1)", test_cases=[{"stdin": "", "expected_output": "2"}]),
            Verdict.WRONG_ANSWER,
            "1\n",
            id="wrong-answer",
        ),
    ],
)
def test_a_verdict_is_a_result_not_a_failure(
    machine: Deployed, request_body: dict[str, Any], verdict: Verdict, stdout: str
) -> None:
    # Given the /execute body as the state machine's input
    # When the execution runs Submit, Wait, Poll ... to the end
    described = machine.run(request_body)
    # Then it SUCCEEDED and its output is the /execute response with the run's verdict
    response = succeeded(described)
    assert response.verdict is verdict
    assert response.stdout == stdout
    if verdict is Verdict.COMPILATION_ERROR:
        assert "error" in response.compile_output


def test_a_run_longer_than_the_synchronous_budget_completes(
    machine: Deployed, workflow: LocalWorkflow
) -> None:
    # Given a program that runs longer than the synchronous budget (shortened to 3 s by configuration)
    body = text_request("python", "import time\ntime.sleep(5)\nprint('slept')", timeout=10)
    sync_service = wiring.build_service(workflow.settings)
    try:
        with pytest.raises(DeadlineExceededError):
            sync_service.execute(ExecuteRequest.model_validate(body))
    finally:
        sync_service.backend.close()
    # When it runs through the state machine
    described = machine.run(body)
    # Then the execution waits for it and answers like /execute would have without a budget
    response = succeeded(described)
    assert response.verdict is Verdict.ACCEPTED
    assert response.stdout == "slept\n"
    assert response.execution_time >= 5
    # And the polls waited as configured (0 s, then 1 s): a handful of loops, not one per 100 ms
    polls = machine.entered_states(described["executionArn"]).count("Poll")
    assert 3 <= polls <= 12


def test_output_beyond_the_state_limit_is_cut_to_fit_with_truncated_flags(machine: Deployed) -> None:
    # Given six test cases that each print 64 KiB to stdout and to stderr (~768 KiB of output)
    code = "import sys\nsys.stdout.write('o' * 65536)\nsys.stderr.write('e' * 65536)"
    body = text_request("python", code, test_cases=[{"stdin": ""}] * 6)
    # When the execution ends
    described = machine.run(body)
    # Then it SUCCEEDED with an output inside the 256 KiB state limit, every cut stream flagged
    assert len(described["output"].encode()) <= MAX_STATE_BYTES
    response = succeeded(described)
    assert response.verdict is Verdict.ACCEPTED
    assert response.test_results is not None
    assert all(case.truncated.stdout and case.truncated.stderr for case in response.test_results)
    assert all(0 < len(case.stdout) < 65536 for case in response.test_results)


# --- failures: named, retried when transient, always cleaned up ----------------------------------------


def test_invalid_input_fails_at_once_with_its_name_and_is_cleaned_up(machine: Deployed) -> None:
    # Given a body whose timeout is above the asynchronous ceiling (900 s)
    arn = machine.start(text_request("python", "print(1)", timeout=5000))
    # When the execution ends
    described = machine.wait(arn)
    # Then it FAILED with the permanent error's name and sentence, after one attempt and a cleanup
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidRequest"
    assert "above the ceiling of 900 s" in described["cause"]
    assert machine.failed_tasks(arn) == ["InvalidRequest"]
    assert machine.entered_states(arn)[-2:] == ["Cleanup", "Failed"]


def test_a_backend_failure_is_retried_then_caught_cleaned_up_and_named(
    monkeypatch: pytest.MonkeyPatch, dev_synth: Synth
) -> None:
    # Given a local backend whose sandbox launcher fails (a real fault: bubblewrap replaced by /bin/false)
    for workflow in local_workflow(monkeypatch, local_bwrap_path=Path("/bin/false")):
        with moto_step_functions(monkeypatch):
            machine = deploy(dev_synth)
            # When an execution runs on it
            arn = machine.start(text_request("python", "print(1)"))
            described = machine.wait(arn)
            # Then Poll's BackendUnavailable was retried twice (1 s, 2 s), then Catch -> Cleanup -> Fail
            assert described["status"] == "FAILED", described
            assert described["error"] == "BackendUnavailable"
            assert "sandbox did not start" in described["cause"]
            assert machine.failed_tasks(arn) == ["BackendUnavailable"] * 3
            assert machine.entered_states(arn)[-2:] == ["Cleanup", "Failed"]
        # And no run is left (local_workflow also checks cgroups, boxes and artifacts on its way out)
        assert workflow.runs.active() == []


# --- other workflows ------------------------------------------------------------------------------------
# moto 5.2.5 cannot run a parent's `states:startExecution.sync:2` task: it passes the ASL parameter names
# (StateMachineArn, Input) to botocore unchanged (KeyError), reads the answer under AWS's names
# (ExecutionArn) that botocore does not use, and names an unnamed child execution "None". So the parent is
# checked as far as moto goes: its definition parses, and what it sends is an input our Submit accepts.


def test_the_documented_parent_workflow_is_valid_and_sends_what_submit_accepts(machine: Deployed) -> None:
    # Given the parent workflow of docs/async.md, pointed at our state machine
    definition = PARENT_WORKFLOW.read_text().replace("${CodeExecStateMachineArn}", machine.state_machine_arn)
    # When moto's ASL parser reads it
    machine.client.create_state_machine(name="parent", definition=definition, roleArn=_role_of(machine))
    # Then its child input (with the console's parent link) runs through our state machine
    parameters = json.loads(definition)["States"]["RunCode"]["Parameters"]
    assert parameters["StateMachineArn"] == machine.state_machine_arn
    child_input = {
        key.removesuffix(".$"): "arn:aws:states:eu-west-1:123456789012:execution:parent:run-1"
        if key.startswith("AWS_STEP_FUNCTIONS")
        else {"language": "python", "code": "print(6 * 7)", "encoding": "text"}[key.removesuffix(".$")]
        for key in parameters["Input"]
    }
    response = succeeded(machine.run(child_input))
    assert response.stdout == "42\n"


def _role_of(machine: Deployed) -> str:
    return machine.client.describe_state_machine(stateMachineArn=machine.state_machine_arn)["roleArn"]
