"""The service stack: one construct per concern, wired in one place.

Seam for the Step Functions issue: add a `Workflow` construct after `api` that receives
`images.image_uris`, calls `eks_access.grant(...)` for its task Lambdas' roles, and adds its
/executions routes to `api.api`; monitoring takes its state machine the same way.
"""

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
        self.execute = ExecuteFunction(self, "Execute", settings=settings, image_uris=self.images.image_uris)
        for deployment in self.images.deployments:
            self.execute.function.node.add_dependency(deployment)
        self.eks_access = EksAccess(self, "EksAccess", settings=settings)
        self.eks_access.grant("ExecuteAccessEntry", self.execute.role)
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
        for language, uri in sorted(self.images.image_uris.items()):
            cdk.CfnOutput(self, f"RunnerImage{language.capitalize()}", value=uri)
