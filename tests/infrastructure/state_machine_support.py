"""The synthesized state machine in moto's Step Functions executor, its Lambda tasks run by our handlers.

moto executes the real definition (Wait, Retry, Catch, Choice, the context object) and invokes each task's
function through `LambdaFunction._invoke_lambda`, the one place where it would start Docker. There the
function's configured handler (`functions.workflow.handlers.submit`, ...) is imported and called in this
process, and a raised exception is answered as the Python Lambda runtime answers it (`errorType` = the
exception's class name), which is what Retry and Catch match on.
"""

from __future__ import annotations

import io
import json
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction

from functions import wiring
from functions.backends.local.backend import LocalBackend, create_backend
from functions.backends.local.runs import LocalRuns
from functions.core.workflow import WorkflowService
from functions.devserver.invokers import LocalLambdaContext
from functions.settings import Settings
from tests.infrastructure.conftest import Synth
from tests.sandbox_support import assert_nothing_left, sandbox_settings

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

REGION = "eu-west-1"
# The synchronous budget, shortened by configuration so a run "longer than /execute allows" takes seconds.
SHORT_SYNC_BUDGET_S = 3.0
EXECUTION_WAIT_S = 120.0  # a wedged execution fails the test instead of hanging the suite
_POLL_S = 0.05  # moto offers no notification of an execution's end: its state is polled, briefly


@dataclass(frozen=True)
class Deployed:
    client: SFNClient
    state_machine_arn: str
    function_arns: dict[str, str]  # logical id -> moto function ARN

    def start(self, body: dict[str, Any], *, name: str | None = None) -> str:
        started = self.client.start_execution(
            stateMachineArn=self.state_machine_arn, name=name or uuid.uuid4().hex, input=json.dumps(body)
        )
        return started["executionArn"]

    def run(self, body: dict[str, Any], *, name: str | None = None) -> dict[str, Any]:
        return self.wait(self.start(body, name=name))

    def wait(self, execution_arn: str, *, timeout_s: float = EXECUTION_WAIT_S) -> dict[str, Any]:
        return wait_closed(self.client, execution_arn, timeout_s=timeout_s)

    def events(self, execution_arn: str) -> list[dict[str, Any]]:
        history = self.client.get_execution_history(executionArn=execution_arn, maxResults=1000)
        return [dict(event) for event in history["events"]]

    def failed_tasks(self, execution_arn: str) -> list[str]:
        """The error name of every failed task attempt, in order (retries included)."""
        return [
            event.get("lambdaFunctionFailedEventDetails", event.get("taskFailedEventDetails", {})).get(
                "error", ""
            )
            for event in self.events(execution_arn)
            if event["type"] in ("LambdaFunctionFailed", "TaskFailed")
        ]

    def entered_states(self, execution_arn: str) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.events(execution_arn)
            if "stateEnteredEventDetails" in event
        ]


def wait_closed(client: SFNClient, execution_arn: str, *, timeout_s: float) -> dict[str, Any]:
    deadline_s = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = dict(client.describe_execution(executionArn=execution_arn))
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline_s:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout_s} s")
        time.sleep(_POLL_S)


def invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Stands in for moto's Docker invocation: the function's handler, called here."""
    module_name, _, attribute = str(function.handler).rpartition(".")
    handler: Callable[[Any, Any], Any] = getattr(import_module(module_name), attribute)
    payload = json.loads(event) if isinstance(event, str) else (event or {})
    context = LocalLambdaContext(request_id=str(uuid.uuid4()), timeout_s=float(function.timeout))
    try:
        return json.dumps(handler(payload, context)), False, ""
    except Exception as exc:  # noqa: BLE001 - what the Lambda runtime does with an unhandled exception
        document = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
        return json.dumps(document), True, ""


@contextmanager
def moto_step_functions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke_in_process)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def deploy(synth: Synth, *, name: str = "executions") -> Deployed:
    """Our functions and the synthesized state machine, inside moto (call within `moto_step_functions`)."""
    iam = boto3.client("iam", region_name=REGION)
    role_arn = iam.create_role(
        RoleName=f"role-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lambda_client = boto3.client("lambda", region_name=REGION)
    function_arns = {}
    for logical_id, resource in synth.resources("AWS::Lambda::Function").items():
        handler = resource["Properties"].get("Handler", "")
        if not handler.startswith("functions.workflow."):
            continue
        created = lambda_client.create_function(
            FunctionName=f"{name}-{logical_id}"[:64],
            Runtime="python3.12",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _empty_zip()},
            Timeout=int(resource["Properties"]["Timeout"]),
        )
        function_arns[logical_id] = created["FunctionArn"]
    client: SFNClient = boto3.client("stepfunctions", region_name=REGION)
    machine = synth.only("AWS::StepFunctions::StateMachine")["Properties"]
    created_machine = client.create_state_machine(
        name=name,
        definition=resolve_definition(machine["DefinitionString"], function_arns),
        roleArn=role_arn,
        type=machine["StateMachineType"],
    )
    return Deployed(client, created_machine["stateMachineArn"], function_arns)


def resolve_definition(definition: Any, function_arns: dict[str, str]) -> str:
    """CloudFormation's Fn::Join of the definition, with each GetAtt of a function's Arn made moto's ARN."""
    if isinstance(definition, str):
        return definition
    _separator, parts = definition["Fn::Join"]
    rendered = []
    for part in parts:
        if isinstance(part, str):
            rendered.append(part)
        else:
            logical_id, attribute = part["Fn::GetAtt"]
            assert attribute == "Arn", part
            rendered.append(function_arns[logical_id])
    return "".join(rendered)


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


@dataclass(frozen=True)
class LocalWorkflow:
    service: WorkflowService
    backend: LocalBackend
    settings: Settings

    @property
    def runs(self) -> LocalRuns:
        runs = self.service.runs
        assert isinstance(runs, LocalRuns)
        return runs


def local_workflow(monkeypatch: pytest.MonkeyPatch, **overrides: object) -> Iterator[LocalWorkflow]:
    """The tasks' service on a local sandbox backend of its own; afterwards no run, sandbox or box is left."""
    settings = sandbox_settings(
        async_poll_initial_s=0, async_poll_max_s=1, sync_budget_s=SHORT_SYNC_BUDGET_S, **overrides
    )
    backend = create_backend(settings)
    service = wiring.build_workflow(settings, backend)
    monkeypatch.setattr(wiring, "get_workflow", lambda: service)
    workflow = LocalWorkflow(service, backend, settings)
    yield workflow
    assert workflow.runs.active() == []
    backend.close()
    assert_nothing_left(backend.host, settings)


def text_request(language: str, code: str, **fields: Any) -> dict[str, Any]:
    return {"language": language, "code": code, "encoding": "text", **fields}
