"""A workflow of yours that runs a program through code-exec (docs/async.md, "For workflow authors").

`code_exec_arn` is the code-exec stack's `StateMachineArn` output. The task waits for the run
(`startExecution.sync:2`, CDK's RUN_JOB) and puts code-exec's answer, the /execute response, at $.run.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct


def grade_submission(scope: Construct, code_exec_arn: str) -> sfn.StateMachine:
    code_exec = sfn.StateMachine.from_state_machine_arn(scope, "CodeExec", code_exec_arn)
    run_code = tasks.StepFunctionsStartExecution(
        scope,
        "RunCode",
        state_machine=code_exec,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,  # startExecution.sync:2: waits, output as JSON
        associate_with_parent=True,  # links the executions in the console; code-exec ignores the extra key
        input=sfn.TaskInput.from_object(
            {
                "language": sfn.JsonPath.string_at("$.language"),
                "code": sfn.JsonPath.string_at("$.code"),
                "encoding": "text",
                "test_cases": sfn.JsonPath.object_at("$.test_cases"),
                "timeout": 60,
            }
        ),
        result_selector={"verdict.$": "$.Output.verdict", "response.$": "$.Output"},
        result_path="$.run",
    )
    # Infrastructure failures only (a verdict is never one): code-exec already retried what was transient.
    run_code.add_catch(sfn.Fail(scope, "CodeExecFailed", cause_path="$.error.Cause"), result_path="$.error")
    verdict = (
        sfn.Choice(scope, "Accepted?")
        .when(sfn.Condition.string_equals("$.run.verdict", "accepted"), sfn.Succeed(scope, "Accepted"))
        .otherwise(sfn.Succeed(scope, "NotAccepted"))
    )
    # StepFunctionsStartExecution grants StartExecution, Describe/StopExecution and the events rule .sync needs.
    return sfn.StateMachine(
        scope, "GradeSubmission", definition_body=sfn.DefinitionBody.from_chainable(run_code.next(verdict))
    )
