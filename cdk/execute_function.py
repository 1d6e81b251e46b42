"""A Lambda of the service configured for the Kubernetes backend on EKS: the API handler (the execute
Lambda), or one of the workflow's tasks (cdk/workflow.py) with another handler and a shared role."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.config import ASYNC_MAX_TIMEOUT_S, LAMBDA_TIMEOUT_S, SYNC_BUDGET_S, DeploySettings
from cdk.lifecycle import removal_policy, retention
from cdk.nag import acknowledge

HANDLER = "functions.api.handler.lambda_handler"


class ExecuteFunction(Construct):
    """By default `function` answers the API (POST /execute, /executions, GET /health, /languages,
    /openapi.json) behind API Gateway; `handler`, `description` and `role` make it a workflow task."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        image_uris: dict[str, str],
        handler: str = HANDLER,
        description: str = "code-exec: runs untrusted code as one Kubernetes Job per request",
        timeout_s: int = LAMBDA_TIMEOUT_S,
        role: iam.Role | None = None,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=retention(settings), removal_policy=removal_policy(settings)
        )
        # Our own role with a policy naming our own log group, instead of the managed basic execution
        # policy (logs:* on every group). EKS access adds eks:DescribeCluster on the one cluster.
        self.role = role or iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Execute Lambda: writes its logs, reads its EKS cluster, creates runner Jobs via RBAC",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_12,
            # x86_64, not arm64: the bundle's native wheels (pydantic-core) are built for the same platform
            # as CI, so the bundle-import test exercises the exact artifact we deploy. arm64 would save ~20%
            # of a function that mostly waits on the Kubernetes API; switch both this and the bundle's pip
            # --platform together if that matters more than testing the shipped bytes.
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=lambda_.Code.from_asset(settings.lambda_bundle_dir),
            memory_size=settings.lambda_memory_mb,
            timeout=cdk.Duration.seconds(timeout_s),
            # The API's function: never more requests at once than the namespace admits Jobs (None: unreserved).
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            environment=self._environment(settings, stack, image_uris),
        )
        if settings.subnet_ids:
            self._place_in_vpc(settings)
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "The runtime is pinned to Python 3.12 on purpose: the bundle's native wheels are built and "
            "import-tested for cp312, so the runtime moves only together with `make build`.",
        )
        if role is None:  # a shared role is acknowledged once, by its owner
            acknowledge_tracing(self.role, in_vpc=bool(settings.subnet_ids))

    @staticmethod
    def _environment(
        settings: DeploySettings, stack: cdk.Stack, image_uris: dict[str, str]
    ) -> dict[str, str]:
        """Names match functions/settings.py (EXEC_ prefix) and Powertools' own variables."""
        return {
            "POWERTOOLS_SERVICE_NAME": settings.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",  # responses carry users' program output
            "LOG_LEVEL": settings.log_level,
            "EXEC_LOG_LEVEL": settings.log_level,
            "EXEC_SERVICE_NAME": settings.service_name,
            # The handler's Metrics(namespace=...) reads this one; the dashboard searches the same namespace.
            "EXEC_METRICS_NAMESPACE": settings.metrics_namespace,
            "EXEC_BACKEND": "kubernetes",
            "EXEC_K8S_AUTH": "eks",
            "EXEC_EKS_CLUSTER_NAME": settings.cluster_name,
            "EXEC_K8S_NAMESPACE": settings.namespace,
            "EXEC_SYNC_BUDGET_S": str(SYNC_BUDGET_S),
            "EXEC_K8S_JOB_QUOTA": str(settings.job_quota),
            # Runner pods only on the dedicated nodes, of the images' architecture, in the RuntimeClass.
            "EXEC_K8S_NODE_SELECTOR": json.dumps(settings.node_selector, sort_keys=True),
            "EXEC_K8S_TOLERATIONS": json.dumps(list(settings.runner_tolerations)),
            **(
                {"EXEC_K8S_RUNTIME_CLASS_NAME": settings.runtime_class_name}
                if settings.runtime_class_name
                else {}
            ),
            "EXEC_MAX_ASYNC_TIMEOUT_S": str(ASYNC_MAX_TIMEOUT_S),
            # The handler adds Access-Control-Allow-Origin to real responses for these origins.
            "EXEC_CORS_ORIGINS": json.dumps(list(settings.cors_origins)),
            # language name -> image reference; the repository URIs are tokens, so let CloudFormation
            # render the JSON.
            "EXEC_RUNNER_IMAGES": stack.to_json_string(image_uris),
        }

    def _place_in_vpc(self, settings: DeploySettings) -> None:
        """Subnets/security groups by id (L1): no VPC lookup, so synth stays offline."""
        cfn_function = self.function.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)  # noqa: S101 - construct invariant
        cfn_function.vpc_config = lambda_.CfnFunction.VpcConfigProperty(
            subnet_ids=list(settings.subnet_ids), security_group_ids=list(settings.security_group_ids)
        )
        interfaces = cdk.Stack.of(self).format_arn(
            service="ec2", resource="network-interface", resource_name="*"
        )
        self.role.add_to_policy(self._network_interface_statement(settings, interfaces))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                resources=["*"],
            )
        )
        # The ENI permissions must exist before the function is created in the VPC.
        self.function.node.add_dependency(self.role)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{interfaces}]",
            "Lambda creates, and later deletes, its network interfaces under ids it picks itself; they are "
            "confined to the configured subnets and security groups, in this account and region.",
        )

    def _network_interface_statement(self, settings: DeploySettings, interfaces: str) -> iam.PolicyStatement:
        """What Lambda does with the role to place the function in the VPC, in the configured subnets only
        (instead of AWSLambdaVPCAccessExecutionRole, which also grants logs on every group)."""
        stack = cdk.Stack.of(self)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="ec2", resource=resource, resource_name=name)

        return iam.PolicyStatement(
            actions=[
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            resources=[
                interfaces,
                *(arn("subnet", subnet) for subnet in settings.subnet_ids),
                *(arn("security-group", group) for group in settings.security_group_ids),
            ],
        )


def acknowledge_tracing(role: iam.IRole, *, in_vpc: bool = False) -> None:
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level "
        "permissions, so the statement CDK adds for active tracing must name '*'"
        + (
            "; nor do ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets, which Lambda needs in a VPC."
            if in_vpc
            else "."
        ),
    )
