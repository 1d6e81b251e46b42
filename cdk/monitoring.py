"""Dashboard and alarms: runs by language and verdict, latency, errors, throttles; an alarm topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk.config import API_INTEGRATION_TIMEOUT_S, DeploySettings
from functions.core.verdicts import Verdict

PERIOD = cdk.Duration.minutes(5)
# Powertools EMF metric emitted once per run with dimensions language + verdict (plus powertools' own
# `service`); SEARCH matches whatever the exact dimension set is, one line per combination.
EXECUTIONS_METRIC = "Executions"
API_5XX_RATE_THRESHOLD = 0.05  # 5% of requests over 5 minutes, twice in a row
# 4xx include API Gateway's 429s (stage throttle, usage plan, WAF rate rule) and 403s (bad keys): a tenth of
# all requests for 10 minutes means clients are being turned away, not just sending bad programs.
API_4XX_RATE_THRESHOLD = 0.10
# p99 within 4 s of API Gateway's 29 s: the slowest requests are about to become gateway timeouts.
API_P99_LATENCY_THRESHOLD_MS = (API_INTEGRATION_TIMEOUT_S - 4) * 1000
LAMBDA_ERRORS_THRESHOLD = 5  # per 5 minutes: errors the handler did not turn into a response
LAMBDA_THROTTLES_THRESHOLD = 1  # any throttle means the reserved concurrency (the Job quota) is exhausted
# internal_error means the sandbox failed, not the program: each one is worth a look.
INTERNAL_ERROR_THRESHOLD = 1


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        function: lambda_.Function,
        api: apigw.RestApi,
        languages: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._alarm_topic(settings)
        self.alarms = [
            *self._alarms(settings, function, api),
            *self._api_alarms(settings, function, api),
            self._internal_error_alarm(settings, function, languages),
        ]
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        self.dashboard = self._dashboard(settings, function, api)

    def _alarm_topic(self, settings: DeploySettings) -> sns.Topic:
        # CloudWatch cannot publish to a topic under the AWS managed SNS key, so the topic has its own key.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{settings.stack_name} alarm topic encryption",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        if settings.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        return topic

    @staticmethod
    def _alarms(
        settings: DeploySettings, function: lambda_.Function, api: apigw.RestApi
    ) -> list[cloudwatch.Alarm]:
        api_5xx_rate = api.metric_server_error(statistic="Average", period=PERIOD)
        lambda_errors = function.metric_errors(statistic="Sum", period=PERIOD)
        lambda_throttles = function.metric_throttles(statistic="Sum", period=PERIOD)
        return [
            api_5xx_rate.create_alarm(
                function,
                "Api5xxRate",
                alarm_description=f"{settings.stack_name}: more than 5% of API requests answered 5xx",
                threshold=API_5XX_RATE_THRESHOLD,
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            lambda_errors.create_alarm(
                function,
                "LambdaErrors",
                alarm_description=f"{settings.stack_name}: the execute Lambda failed (crash or timeout)",
                threshold=LAMBDA_ERRORS_THRESHOLD,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            lambda_throttles.create_alarm(
                function,
                "LambdaThrottles",
                alarm_description=f"{settings.stack_name}: the execute Lambda was throttled",
                threshold=LAMBDA_THROTTLES_THRESHOLD,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]

    @staticmethod
    def _api_alarms(
        settings: DeploySettings, function: lambda_.Function, api: apigw.RestApi
    ) -> list[cloudwatch.Alarm]:
        return [
            api.metric_latency(statistic="p99", period=PERIOD).create_alarm(
                function,
                "ApiLatencyP99",
                alarm_description=f"{settings.stack_name}: API p99 latency near the {API_INTEGRATION_TIMEOUT_S} s "
                "integration timeout (cold image pulls, a slow cluster, a full namespace)",
                threshold=API_P99_LATENCY_THRESHOLD_MS,
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            api.metric_client_error(statistic="Average", period=PERIOD).create_alarm(
                function,
                "Api4xxRate",
                alarm_description=f"{settings.stack_name}: more than 10% of API requests answered 4xx "
                "(429 throttling by stage, usage plan or WAF; 403 keys)",
                threshold=API_4XX_RATE_THRESHOLD,
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]

    @staticmethod
    def _internal_error_alarm(
        settings: DeploySettings, function: lambda_.Function, languages: list[str]
    ) -> cloudwatch.Alarm:
        """The EMF metric `Executions` with verdict internal_error, summed over the languages.

        An alarm cannot use SEARCH, and an EMF metric exists per exact dimension set (language, verdict,
        service): one metric per language, added up.
        """
        per_language = {
            f"m{index}": cloudwatch.Metric(
                namespace=settings.metrics_namespace,
                metric_name=EXECUTIONS_METRIC,
                dimensions_map={
                    "service": settings.service_name,
                    "language": language,
                    "verdict": Verdict.INTERNAL_ERROR.value,
                },
                statistic="Sum",
                period=PERIOD,
            )
            for index, language in enumerate(languages)
        }
        total = cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({name}, 0)" for name in per_language),
            using_metrics=per_language,
            label="internal_error verdicts",
            period=PERIOD,
        )
        return total.create_alarm(
            function,
            "InternalErrorVerdicts",
            alarm_description=f"{settings.stack_name}: runs ended with verdict internal_error (the sandbox or "
            "the cluster failed, not the program)",
            threshold=INTERNAL_ERROR_THRESHOLD,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _dashboard(
        self, settings: DeploySettings, function: lambda_.Function, api: apigw.RestApi
    ) -> cloudwatch.Dashboard:
        runs = cloudwatch.MathExpression(
            expression=(
                f'SEARCH(\'Namespace="{settings.metrics_namespace}" '
                f"MetricName=\"{EXECUTIONS_METRIC}\"', 'Sum', {int(PERIOD.to_seconds())})"
            ),
            label="",
            period=PERIOD,
        )
        latency = [
            function.metric_duration(statistic="p50", period=PERIOD, label="Lambda p50"),
            function.metric_duration(statistic="p99", period=PERIOD, label="Lambda p99"),
            api.metric_latency(statistic="p50", period=PERIOD, label="API p50"),
            api.metric_latency(statistic="p99", period=PERIOD, label="API p99"),
        ]
        errors = [
            api.metric_server_error(statistic="Sum", period=PERIOD, label="API 5xx"),
            api.metric_client_error(statistic="Sum", period=PERIOD, label="API 4xx"),
            function.metric_errors(statistic="Sum", period=PERIOD, label="Lambda errors"),
        ]
        throttles = [
            function.metric_throttles(statistic="Sum", period=PERIOD, label="Lambda throttles"),
            function.metric(
                "ConcurrentExecutions", statistic="Maximum", period=PERIOD, label="Lambda concurrency"
            ),
        ]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=settings.stack_name)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Runs by language and verdict", left=[runs], width=24, stacked=True),
            cloudwatch.GraphWidget(title="Latency (ms)", left=latency, width=12),
            cloudwatch.GraphWidget(title="Errors", left=errors, width=12),
            cloudwatch.GraphWidget(title="Throttles and concurrency", left=throttles, width=12),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=12),
        )
        return dashboard
