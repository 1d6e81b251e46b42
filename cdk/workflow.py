"""The asynchronous path: a Standard state machine and its three task Lambdas (docs/async.md).

    Submit -> Wait ($.wait_s) -> Poll -> Done? --yes--> Succeeded (output: the /execute response)
                ^                          |no
                +--------------------------+
    any task error (after its retries) -> Cleanup -> Failed (the error's name and cause)

Input is the /execute body, output the /execute response, so other workflows call it with
`states:startExecution.sync:2`. The tasks share one role, which EKS access puts into the controller group
like the execute Lambda's. Poll computes the next wait, so the waits grow without a definition change.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from cdk.config import ASYNC_MAX_TIMEOUT_S, WORKFLOW_TASK_TIMEOUT_S, DeploySettings
from cdk.execute_function import ExecuteFunction, acknowledge_tracing
from cdk.lifecycle import removal_policy, retention
from cdk.nag import acknowledge
from functions.core.workflow import RETRY_RULES, execution_timeout_s
from functions.settings import Settings
from functions.wiring import async_policy

TASK_HANDLERS = {
    "Submit": "functions.workflow.handlers.submit",
    "Poll": "functions.workflow.handlers.poll",
    "Cleanup": "functions.workflow.handlers.cleanup",
}


def state_machine_timeout_s() -> int:
    """Above the longest run the deployed limits allow (the Lambdas get EXEC_MAX_ASYNC_TIMEOUT_S)."""
    deployed = Settings.model_construct(max_async_timeout_s=float(ASYNC_MAX_TIMEOUT_S))
    return execution_timeout_s(async_policy(deployed))


class Workflow(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, image_uris: dict[str, str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Workflow tasks: write their logs, read the EKS cluster, create/read/delete runner Jobs",
        )
        acknowledge_tracing(self.task_role)
        self.functions = {
            name: ExecuteFunction(
                self,
                f"{name}Function",
                settings=settings,
                image_uris=image_uris,
                handler=handler,
                description=f"code-exec workflow: {name.lower()} step of an asynchronous run",
                timeout_s=WORKFLOW_TASK_TIMEOUT_S,
                role=self.task_role,
            ).function
            for name, handler in TASK_HANDLERS.items()
        }
        self.log_group = logs.LogGroup(
            self, "Logs", retention=retention(settings), removal_policy=removal_policy(settings)
        )
        self.state_machine_name = f"{settings.stack_name}-executions"
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            comment="code-exec: one asynchronous run; input the /execute body, output the /execute response",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition()),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=cdk.Duration.seconds(state_machine_timeout_s()),
            tracing_enabled=True,
            # Execution data holds users' code and output: log the events, never their data.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )
        self._acknowledge()

    def grant_api(self, role: iam.Role) -> None:
        """The API may start executions of this state machine and read or stop its executions; no more."""
        self.state_machine.grant_start_execution(role)
        stack = cdk.Stack.of(self)
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"], resources=[executions]
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{stack.resolve(executions)}]",
            "Executions are created at run time, one per request: the API may describe and stop the "
            "executions of this one state machine, which an ARN can only name with a trailing wildcard.",
        )

    def _definition(self) -> sfn.IChainable:
        submit = self._task(
            "Submit",
            sfn.TaskInput.from_object(
                {"request": sfn.JsonPath.object_at("$"), "execution_name": sfn.JsonPath.execution_name}
            ),
        )
        wait = sfn.Wait(self, "Wait", time=sfn.WaitTime.seconds_path("$.wait_s"))
        poll = self._task("Poll", None)  # its whole input: Submit's (or the last Poll's) output
        # Cleanup's input is the caught error ({Error, Cause}); its own result is dropped so Failed reads it.
        cleanup = self._task(
            "Cleanup",
            sfn.TaskInput.from_object({"execution_name": sfn.JsonPath.execution_name}),
            result_path=sfn.JsonPath.DISCARD,
        )
        failed = sfn.Fail(self, "Failed", error_path="$.Error", cause_path="$.Cause")
        # A cleanup that fails still fails the execution with the original error; the sweeper removes
        # what it left behind.
        cleanup.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.cleanup_error")
        cleanup.next(failed)
        for task in (submit, poll):
            task.add_catch(cleanup, errors=[sfn.Errors.ALL], result_path="$")
        succeeded = sfn.Succeed(self, "Succeeded", output_path="$.result")
        done = (
            sfn.Choice(self, "Done?")
            .when(sfn.Condition.boolean_equals("$.done", value=True), succeeded)
            .otherwise(wait)
        )
        return submit.next(wait).next(poll).next(done)

    def _task(
        self, name: str, payload: sfn.TaskInput | None, *, result_path: str = "$"
    ) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self.functions[name],
            payload=payload,
            payload_response_only=True,  # the function's own output, not Lambda's envelope
            result_path=result_path,
        )
        for rule in RETRY_RULES:
            task.add_retry(
                errors=list(rule.error_names),
                interval=cdk.Duration.seconds(rule.interval_s),
                max_attempts=rule.max_attempts,
                backoff_rate=rule.backoff_rate,
            )
        return task

    def _acknowledge(self) -> None:
        stack = cdk.Stack.of(self)
        for function in self.functions.values():
            logical_id = stack.resolve(function.function_arn)["Fn::GetAtt"][0]
            acknowledge(
                self.state_machine,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                "The state machine invokes only our three task functions; CDK's grant also names their "
                "versions and aliases (<function ARN>:*), which the tasks never use.",
            )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:CreateLogDelivery and the other vended-log actions) and X-Ray "
            "(xray:PutTraceSegments, GetSamplingRules) have no resource-level permissions: they must name '*'.",
        )
