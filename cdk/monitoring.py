"""Dashboard and alarms: runs by language and verdict, latency, errors, throttles."""

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

from cdk.config import DeploySettings

PERIOD = cdk.Duration.minutes(5)
# Powertools EMF metric emitted once per run with dimensions language + verdict (plus powertools' own
# `service`); SEARCH matches whatever the exact dimension set is, one line per combination.
EXECUTIONS_METRIC = "Executions"
API_5XX_RATE_THRESHOLD = 0.05  # 5% of requests over 5 minutes, twice in a row
LAMBDA_ERRORS_THRESHOLD = 5  # per 5 minutes: errors the handler did not turn into a response
LAMBDA_THROTTLES_THRESHOLD = 1  # any throttle means account concurrency is exhausted


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        function: lambda_.Function,
        api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._alarm_topic(settings)
        self.alarms = self._alarms(settings, function, api)
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
