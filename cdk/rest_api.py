"""The public REST API: API Gateway in front of the execute Lambda (Lambda proxy integration)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from cdk.config import API_INTEGRATION_TIMEOUT_S, DeploySettings
from cdk.lifecycle import removal_policy, retention
from cdk.nag import acknowledge
from functions.api.cors import CORS_ALLOW_HEADERS

# (path, method) -> the handler's routes (functions/api/routes.py).
ROUTES: tuple[tuple[str, str], ...] = (
    ("execute", "POST"),
    ("executions", "POST"),
    ("executions/{execution_id}", "GET"),
    ("executions/{execution_id}", "DELETE"),
    ("health", "GET"),
    ("languages", "GET"),
    ("openapi.json", "GET"),
    # The Judge0 CE 1.13.1 API (functions/api/judge0.py)
    ("judge0/about", "GET"),
    ("judge0/config_info", "GET"),
    ("judge0/languages", "GET"),
    ("judge0/languages/{language_id}", "GET"),
    ("judge0/statuses", "GET"),
    ("judge0/submissions", "POST"),
    ("judge0/submissions/batch", "GET"),
    ("judge0/submissions/batch", "POST"),
    ("judge0/submissions/{token}", "GET"),
    ("judge0/submissions/{token}", "DELETE"),
)


class RestApi(Construct):
    """`api` with its stage; `api_key` only in api_key auth mode."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, handler: lambda_.IFunction
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=retention(settings), removal_policy=removal_policy(settings)
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=settings.stack_name,
            description="code-exec: run untrusted code in a sandbox",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution logs need the account-level CloudWatch role (AWS::ApiGateway::Account).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=self._stage_options(settings),
            default_method_options=self._method_options(settings),
            default_cors_preflight_options=self._cors(settings),
        )
        integration = apigw.LambdaIntegration(
            handler,
            proxy=True,
            timeout=cdk.Duration.seconds(API_INTEGRATION_TIMEOUT_S),
            allow_test_invoke=False,  # no console test-invoke permission on the function
        )
        for path, method in ROUTES:
            self.api.root.resource_for_path(path).add_method(method, integration)
        self.api_key = self._usage_plan(settings) if settings.auth_mode == "api_key" else None
        self.web_acl = self._web_acl(settings) if settings.waf_rate_limit_per_5_min else None
        self._acknowledge(settings)

    def _stage_options(self, settings: DeploySettings) -> apigw.StageOptions:
        return apigw.StageOptions(
            stage_name=settings.environment,
            tracing_enabled=True,
            metrics_enabled=True,
            logging_level=apigw.MethodLoggingLevel.ERROR,
            data_trace_enabled=False,  # request bodies carry users' code: never log them
            access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
            access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                caller=False,
                http_method=True,
                ip=True,
                protocol=True,
                request_time=True,
                resource_path=True,
                response_length=True,
                status=True,
                user=True,
            ),
            throttling_rate_limit=settings.throttle_rate_limit,
            throttling_burst_limit=settings.throttle_burst_limit,
        )

    @staticmethod
    def _method_options(settings: DeploySettings) -> apigw.MethodOptions:
        if settings.auth_mode == "iam":
            return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
        return apigw.MethodOptions(api_key_required=True)

    @staticmethod
    def _cors(settings: DeploySettings) -> apigw.CorsOptions | None:
        if not settings.cors_origins:
            return None  # same-origin and server-to-server clients only
        return apigw.CorsOptions(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=CORS_ALLOW_HEADERS,
            max_age=cdk.Duration.hours(1),
        )

    def _usage_plan(self, settings: DeploySettings) -> apigw.IApiKey:
        api_key = self.api.add_api_key("ApiKey", description=f"{settings.stack_name} default client key")
        plan = self.api.add_usage_plan(
            "UsagePlan",
            name=f"{settings.stack_name}-default",
            throttle=apigw.ThrottleSettings(
                rate_limit=settings.throttle_rate_limit, burst_limit=settings.throttle_burst_limit
            ),
            quota=apigw.QuotaSettings(limit=settings.quota_per_day, period=apigw.Period.DAY),
        )
        plan.add_api_key(api_key)
        plan.add_api_stage(stage=self.api.deployment_stage)
        return api_key

    def _web_acl(self, settings: DeploySettings) -> wafv2.CfnWebACL:
        """A regional WAF ACL on the stage: each client IP gets at most the limit per 5 minutes, then 429s
        (the stage throttle and usage plan limit the API as a whole; this one limits a single source)."""

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        too_many = wafv2.CfnWebACL.CustomResponseProperty(response_code=429)
        rate_rule = wafv2.CfnWebACL.RuleProperty(
            name="rate-per-client-ip",
            priority=0,
            action=wafv2.CfnWebACL.RuleActionProperty(
                block=wafv2.CfnWebACL.BlockActionProperty(custom_response=too_many)
            ),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=settings.waf_rate_limit_per_5_min or 0,
                    aggregate_key_type="IP",
                    evaluation_window_sec=300,
                )
            ),
            visibility_config=visibility(f"{settings.stack_name}-rate-per-client-ip"),
        )
        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=[rate_rule],
            visibility_config=visibility(f"{settings.stack_name}-web-acl"),
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
        return acl

    def _acknowledge(self, settings: DeploySettings) -> None:
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "Requests are validated by the handler (pydantic), which answers the contract's JSON 400 "
            "{error, message}; an API Gateway validator would answer a different error shape.",
        )
        if self.web_acl is None:
            acknowledge(
                self.api,
                "AwsSolutions-APIG3",
                "No WAF web ACL unless wafRateLimitPer5Min is set: callers are authenticated (API key + usage "
                "plan or IAM) and stage throttling bounds the load.",
            )
        if settings.auth_mode == "api_key":
            acknowledge(
                self.api,
                "AwsSolutions-APIG4",
                "authMode=api_key: every method requires an API key bound to a usage plan with throttle and "
                "quota (set authMode=iam for SigV4); CORS preflight OPTIONS cannot carry credentials.",
            )
        else:
            acknowledge(
                self.api,
                "AwsSolutions-APIG4",
                "authMode=iam: every method uses AWS_IAM authorization; only the CORS preflight OPTIONS "
                "methods are open, because browsers send preflights without credentials.",
            )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "Callers are services and tools authenticated with an API key or IAM SigV4, not Cognito "
            "user pools; there is no end-user sign-in in this service.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level API Gateway logging role must use this AWS managed policy; it is the "
            "role API Gateway assumes to write execution and access logs.",
        )
