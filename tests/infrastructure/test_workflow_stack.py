"""The asynchronous path in the synthesized stack: the state machine, its IAM, its logging, the API's grants."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import aws_cdk as cdk
import pytest

from cdk.config import ASYNC_MAX_TIMEOUT_S, WORKFLOW_TASK_TIMEOUT_S
from cdk.workflow import TASK_HANDLERS, state_machine_timeout_s
from functions.core.workflow import RETRY_RULES, max_execution_s
from functions.settings import Settings
from functions.wiring import async_policy
from functions.workflow.handlers import SubmitInput
from tests.infrastructure.conftest import REPO_ROOT, Synth, lambda_environment, resolve
from tests.infrastructure.test_stack import as_list, methods, policy_statements

STATE_MACHINE = "AWS::StepFunctions::StateMachine"


def definition(synth: Synth) -> dict[str, Any]:
    rendered = resolve(synth.only(STATE_MACHINE)["Properties"]["DefinitionString"])
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def state_machine_id(synth: Synth) -> str:
    (logical_id,) = synth.resources(STATE_MACHINE)
    return logical_id


def task_functions(synth: Synth) -> dict[str, str]:
    """Handler -> logical id of the workflow's task functions."""
    return {
        resource["Properties"]["Handler"]: logical_id
        for logical_id, resource in synth.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler", "").startswith("functions.workflow.")
    }


def statements_of_role(synth: Synth, role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in synth.resources("AWS::IAM::Policy").values():
        roles = [resolve(role) for role in resource["Properties"]["Roles"]]
        if any(role.startswith(f"<{role_prefix}") for role in roles):
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


# --- the state machine ----------------------------------------------------------------------------------


def test_one_standard_state_machine_traced_and_logging_every_event_without_data(any_synth: Synth) -> None:
    properties = any_synth.only(STATE_MACHINE)["Properties"]
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    logging = properties["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    # Execution data carries users' code and output: never logged
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group = resolve(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])
    log_group_id = log_group.strip("<>").removesuffix(".Arn")
    assert any_synth.template["Resources"][log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in any_synth.template["Resources"][log_group_id]["Properties"]


def test_submit_wait_poll_loop_ends_in_the_execute_response(dev_synth: Synth) -> None:
    states = definition(dev_synth)["States"]
    assert definition(dev_synth)["StartAt"] == "Submit"
    assert states["Submit"]["Next"] == "Wait"
    # The wait is Poll's to choose ($.wait_s), so configuration changes it, not the definition
    assert states["Wait"] == {"Type": "Wait", "SecondsPath": "$.wait_s", "Next": "Poll"}
    assert states["Poll"]["Next"] == "Done?"
    assert states["Done?"]["Choices"] == [{"Variable": "$.done", "BooleanEquals": True, "Next": "Succeeded"}]
    assert states["Done?"]["Default"] == "Wait"
    assert states["Succeeded"] == {"Type": "Succeed", "OutputPath": "$.result"}
    # The execution's name reaches Submit and Cleanup: the run id derives from it
    assert states["Submit"]["Parameters"] == {"request.$": "$", "execution_name.$": "$$.Execution.Name"}
    assert states["Cleanup"]["Parameters"] == {"execution_name.$": "$$.Execution.Name"}


def test_every_task_is_caught_cleaned_up_and_failed_with_the_error_name_and_cause(dev_synth: Synth) -> None:
    states = definition(dev_synth)["States"]
    for name in ("Submit", "Poll"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$", "Next": "Cleanup"}
        ]
    # A failing cleanup still fails with the original error (kept at $.Error / $.Cause)
    assert states["Cleanup"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.cleanup_error", "Next": "Failed"}
    ]
    assert states["Cleanup"]["ResultPath"] is None
    assert states["Cleanup"]["Next"] == "Failed"
    assert states["Failed"] == {"Type": "Fail", "ErrorPath": "$.Error", "CausePath": "$.Cause"}


def test_only_transient_errors_are_retried(dev_synth: Synth) -> None:
    states = definition(dev_synth)["States"]
    ours = {name for rule in RETRY_RULES for name in rule.error_names}
    assert ours == {"CapacityExhausted", "BackendUnavailable"}
    for name in ("Submit", "Poll", "Cleanup"):
        retried = {error for retry in states[name]["Retry"] for error in retry["ErrorEquals"]}
        assert ours <= retried
        assert not {"InvalidRequest", "UnknownLanguage", "PayloadTooLarge", "DeadlineExceeded"} & retried
        assert all(not error.startswith("States.") for error in retried)


def test_the_timeout_lies_above_the_longest_run_the_deployed_limits_allow(dev_synth: Synth) -> None:
    deployed = async_policy(Settings.model_construct(max_async_timeout_s=float(ASYNC_MAX_TIMEOUT_S)))
    timeout_s = definition(dev_synth)["TimeoutSeconds"]
    assert timeout_s == state_machine_timeout_s()
    assert timeout_s > max_execution_s(deployed) > ASYNC_MAX_TIMEOUT_S
    # And the functions enforce the same ceiling the timeout was computed for
    for logical_id in task_functions(dev_synth).values():
        variables = dev_synth.template["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        assert variables["EXEC_MAX_ASYNC_TIMEOUT_S"] == str(ASYNC_MAX_TIMEOUT_S)
    assert lambda_environment(dev_synth)["EXEC_MAX_ASYNC_TIMEOUT_S"] == str(ASYNC_MAX_TIMEOUT_S)


# --- IAM ------------------------------------------------------------------------------------------------


def test_the_state_machine_may_invoke_only_our_three_task_functions(any_synth: Synth) -> None:
    statements = statements_of_role(any_synth, "WorkflowStateMachineRole")
    invoke = [
        statement for statement in statements if "lambda:InvokeFunction" in as_list(statement["Action"])
    ]
    assert len(invoke) == 1
    resources = {resolve(resource) for resource in as_list(invoke[0]["Resource"])}
    functions = set(task_functions(any_synth).values())
    assert len(functions) == len(TASK_HANDLERS) == 3
    assert resources == {f"<{f}.Arn>" for f in functions} | {f"<{f}.Arn>:*" for f in functions}
    # Nothing else it may do reaches beyond its logs and traces
    others = {
        action
        for statement in statements
        if statement is not invoke[0]
        for action in as_list(statement["Action"])
    }
    assert all(action.startswith(("logs:", "xray:")) for action in others), others


def test_the_api_may_start_this_state_machine_and_read_or_stop_only_its_executions(any_synth: Synth) -> None:
    machine = state_machine_id(any_synth)
    states_statements = [
        statement
        for statement in policy_statements(any_synth)
        if any(action.startswith("states:") for action in as_list(statement["Action"]))
    ]
    by_action = {
        action: resolve(statement["Resource"])
        for statement in states_statements
        for action in as_list(statement["Action"])
    }
    assert by_action == {
        "states:StartExecution": f"<{machine}>",
        "states:DescribeExecution": by_action["states:StopExecution"],
        "states:StopExecution": by_action["states:StopExecution"],
    }
    name = any_synth.only(STATE_MACHINE)["Properties"]["StateMachineName"]
    assert by_action["states:StopExecution"].endswith(f":execution:{name}:*")
    # And only the execute Lambda's role holds them
    assert all(statement in statements_of_role(any_synth, "ExecuteRole") for statement in states_statements)


def test_the_workflow_tasks_run_the_handlers_with_their_own_traced_role(dev_synth: Synth) -> None:
    assert set(task_functions(dev_synth)) == set(TASK_HANDLERS.values())
    roles = set()
    for logical_id in task_functions(dev_synth).values():
        properties = dev_synth.template["Resources"][logical_id]["Properties"]
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert properties["Timeout"] == WORKFLOW_TASK_TIMEOUT_S
        assert properties["Environment"]["Variables"]["EXEC_BACKEND"] == "kubernetes"
        assert "EXEC_STATE_MACHINE_ARN" not in properties["Environment"]["Variables"]
        roles.add(resolve(properties["Role"]))
    assert len(roles) == 1
    assert roles.pop().startswith("<WorkflowTaskRole")


# --- the API and the stack's outputs --------------------------------------------------------------------


def test_the_api_lambda_knows_the_state_machine_and_the_stack_exports_it(any_synth: Synth) -> None:
    machine = state_machine_id(any_synth)
    assert lambda_environment(any_synth)["EXEC_STATE_MACHINE_ARN"] == {"Ref": machine}
    assert any_synth.template["Outputs"]["StateMachineArn"]["Value"] == {"Ref": machine}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/executions", "POST"),
        ("/executions/{execution_id}", "GET"),
        ("/executions/{execution_id}", "DELETE"),
    ],
    ids=["POST /executions", "GET /executions/{id}", "DELETE /executions/{id}"],
)
def test_the_executions_routes_reach_the_api_lambda(any_synth: Synth, path: str, method: str) -> None:
    integration = methods(any_synth)[(path, method)]["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert "<ExecuteFunction" in resolve(integration["Uri"])


def test_browsers_may_send_delete_and_the_idempotency_key(dev_synth: Synth) -> None:
    preflight = methods(dev_synth)[("/executions/{execution_id}", "OPTIONS")]
    (response,) = preflight["Integration"]["IntegrationResponses"]
    parameters = response["ResponseParameters"]
    assert "DELETE" in parameters["method.response.header.Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in parameters["method.response.header.Access-Control-Allow-Headers"]


# --- the documented way other workflows call it -----------------------------------------------------------


def test_the_documented_cdk_caller_waits_with_start_execution_sync_2_and_sends_a_valid_body() -> None:
    # Given the docs' CDK example, synthesized against a code-exec state machine ARN
    spec = importlib.util.spec_from_file_location("parent_workflow_cdk", CDK_EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    app = cdk.App()
    stack = cdk.Stack(app, "Parent", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    example.grade_submission(stack, CODE_EXEC_ARN)
    template = app.synth().get_stack_by_name("Parent").template
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == STATE_MACHINE]
    task = json.loads(resolve(machine["Properties"]["DefinitionString"]))["States"]["RunCode"]
    # Then the task waits for our execution and reads its output as JSON
    assert task["Resource"].endswith(":states:::states:startExecution.sync:2")
    assert task["Parameters"]["StateMachineArn"] == CODE_EXEC_ARN
    assert task["ResultSelector"]["response.$"] == "$.Output"
    # And what it sends (a value for each path it reads) is an input our Submit accepts
    child_input = {
        key.removesuffix(".$"): VALUES_AT_PATHS.get(key, value)
        for key, value in task["Parameters"]["Input"].items()
    }
    SubmitInput.model_validate({"request": child_input, "execution_name": "child-1"})


CDK_EXAMPLE = REPO_ROOT / "docs" / "examples" / "parent_workflow_cdk.py"
CODE_EXEC_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:CodeExec-dev-executions"
VALUES_AT_PATHS = {
    "language.$": "python",
    "code.$": "print(1)",
    "test_cases.$": [{"stdin": "1", "expected_output": "1"}],
    "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "arn:aws:states:eu-west-1:123456789012:execution:Parent:1",
}
