"""The service stack: one construct per concern, wired in one place."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from cdk.config import DeploySettings
from cdk.eks_access import EksAccess
from cdk.execute_function import ExecuteFunction
from cdk.monitoring import Monitoring
from cdk.rest_api import RestApi
from cdk.runner_images import RunnerImages
from cdk.workflow import Workflow
from functions.aws.deployed_settings import EXECUTE_FUNCTION_OUTPUT


class CodeExecStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, runners_dir: Path
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=settings.account, region=settings.region),
            description=f"code-exec ({settings.environment}): API Gateway -> Lambda -> EKS Jobs",
        )
        cdk.Tags.of(self).add("service", settings.service_name)
        cdk.Tags.of(self).add("environment", settings.environment)

        self.images = RunnerImages(self, "RunnerImages", settings=settings, runners_dir=runners_dir)
        self.execute = ExecuteFunction(
            self,
            "Execute",
            settings=settings,
            image_uris=self.images.image_uris,
            reserved_concurrency=settings.job_quota,
        )
        for deployment in self.images.deployments:
            self.execute.function.node.add_dependency(deployment)
        self.eks_access = EksAccess(self, "EksAccess", settings=settings)
        self.eks_access.grant("ExecuteAccessEntry", self.execute.role)
        self.workflow = Workflow(self, "Workflow", settings=settings, image_uris=self.images.image_uris)
        for function in self.workflow.functions.values():
            for deployment in self.images.deployments:
                function.node.add_dependency(deployment)
        self.eks_access.grant("WorkflowAccessEntry", self.workflow.task_role)
        # /executions: the API starts, reads and stops executions, and cleans up after a stop.
        self.workflow.grant_api(self.execute.role)
        self.execute.function.add_environment(
            "EXEC_STATE_MACHINE_ARN", self.workflow.state_machine.state_machine_arn
        )
        self.api = RestApi(self, "Api", settings=settings, handler=self.execute.function)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            function=self.execute.function,
            api=self.api.api,
            languages=[language.name for language in self.images.languages],
        )
        self._outputs(settings)

    def _outputs(self, settings: DeploySettings) -> None:
        cdk.CfnOutput(self, "ApiUrl", value=self.api.api.url, description="Base URL of the REST API stage")
        if self.api.api_key is not None:
            cdk.CfnOutput(
                self,
                "ApiKeyId",
                value=self.api.api_key.key_id,
                description="aws apigateway get-api-key --include-value --api-key <id> prints the key",
            )
        cdk.CfnOutput(self, "RunnerNamespace", value=settings.namespace)
        cdk.CfnOutput(
            self,
            "RunnerImagePrefix",
            value=self.images.image_prefix,
            description="imagePrefix of the ConfigMap runner-admission in k8s/overlays/<environment>",
        )
        cdk.CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.monitoring.topic.topic_arn,
            description="aws sns subscribe --topic-arn <arn> --protocol email --notification-endpoint <you>",
        )
        cdk.CfnOutput(self, "ExecuteRoleArn", value=self.execute.role.role_arn)
        # `make preflight` reads the service's settings from this function's environment.
        cdk.CfnOutput(self, EXECUTE_FUNCTION_OUTPUT, value=self.execute.function.function_name)
        cdk.CfnOutput(
            self,
            "StateMachineArn",
            value=self.workflow.state_machine.state_machine_arn,
            description="Other workflows run code with states:startExecution.sync:2 on this (docs/async.md)",
        )
        cdk.CfnOutput(self, "WorkflowTaskRoleArn", value=self.workflow.task_role.role_arn)
        for language, uri in sorted(self.images.image_uris.items()):
            cdk.CfnOutput(self, f"RunnerImage{language.capitalize()}", value=uri)
