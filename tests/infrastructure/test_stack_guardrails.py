"""The synthesized stack's guardrails around the cluster: concurrency tied to the Job quota, runner placement,
the Lambda's narrow VPC rights, the alarms and where they go, the optional WAF rate rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdk.config import API_INTEGRATION_TIMEOUT_S, SYNC_BUDGET_S, DeploySettings
from functions import observability
from functions.aws.deployed_settings import EXECUTE_FUNCTION_OUTPUT
from functions.core.models import ExecuteResponse
from functions.core.verdicts import Verdict
from functions.settings import Settings
from tests.infrastructure.conftest import (
    ACCOUNT,
    REGION,
    REPO_ROOT,
    Synth,
    execute_function,
    lambda_environment,
    resolve,
)
from tests.infrastructure.test_stack import LANGUAGES, as_list, policy_statements

QUOTA_YAML = REPO_ROOT / "k8s" / "base" / "resourcequota.yaml"


def job_quota_in_k8s() -> int:
    return int(yaml.safe_load(QUOTA_YAML.read_text())["spec"]["hard"]["count/jobs.batch"])


# --- concurrency and placement ----------------------------------------------------------------------------


@pytest.mark.parametrize(("synth_name", "quota"), [("dev_synth", 50), ("prod_iam_synth", 40)])
def test_reserved_concurrency_is_the_job_quota(
    request: pytest.FixtureRequest, synth_name: str, quota: int
) -> None:
    # Given the stack for the default quota and for -c jobQuota=40
    synth: Synth = request.getfixturevalue(synth_name)
    # Then the Lambda can never hold more requests (each at most one Job) than the namespace admits Jobs,
    # and the service knows the number (the preflight compares it with the namespace's quota)
    assert execute_function(synth)["Properties"]["ReservedConcurrentExecutions"] == quota
    assert lambda_environment(synth)["EXEC_K8S_JOB_QUOTA"] == str(quota)


def test_the_default_job_quota_is_the_one_k8s_sets() -> None:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    defaults = DeploySettings.model_validate(
        {"account": "123456789012", "region": "eu-west-1", "clusterName": "c"}
    )
    assert job_quota_in_k8s() == context["jobQuota"] == defaults.job_quota == Settings().k8s_job_quota


def test_runner_pods_select_the_images_architecture_by_default(dev_synth: Synth) -> None:
    env = lambda_environment(dev_synth)
    assert json.loads(env["EXEC_K8S_NODE_SELECTOR"]) == {"kubernetes.io/arch": "amd64"}
    assert json.loads(env["EXEC_K8S_TOLERATIONS"]) == []
    assert "EXEC_K8S_RUNTIME_CLASS_NAME" not in env


def test_runner_pods_go_to_the_dedicated_nodes_in_gvisor(prod_iam_synth: Synth) -> None:
    # Given -c runtimeClassName=gvisor, a node label, a taint and arm64 images
    env = lambda_environment(prod_iam_synth)
    settings = Settings(
        k8s_node_selector=json.loads(env["EXEC_K8S_NODE_SELECTOR"]),
        k8s_tolerations=json.loads(env["EXEC_K8S_TOLERATIONS"]),
        k8s_runtime_class_name=env["EXEC_K8S_RUNTIME_CLASS_NAME"],
    )
    # Then the service places its pods exactly there
    assert settings.k8s_node_selector == {"code-exec/untrusted": "true", "kubernetes.io/arch": "arm64"}
    assert settings.k8s_tolerations == ["code-exec/untrusted=true:NoSchedule"]
    assert settings.k8s_runtime_class_name == "gvisor"


# --- VPC ----------------------------------------------------------------------------------------------------


LOG_WRITES = frozenset({"logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup", "logs:*"})


def test_vpc_mode_grants_network_interfaces_in_the_configured_subnets_only(prod_iam_synth: Synth) -> None:
    # Given the Lambda in a VPC
    role = next(
        resource["Properties"]
        for logical_id, resource in prod_iam_synth.resources("AWS::IAM::Role").items()
        if logical_id.startswith("ExecuteRole")
    )
    statements = policy_statements(prod_iam_synth)
    # (the execute Lambda's role, and the workflow tasks' role: both functions run in the VPC)
    interfaces = [s for s in statements if "ec2:CreateNetworkInterface" in as_list(s["Action"])]
    # Then no managed policy (AWSLambdaVPCAccessExecutionRole would add logs on every group) ...
    assert "ManagedPolicyArns" not in role
    # ... and the interfaces may be made only in the configured subnets and security groups
    assert interfaces
    for statement in interfaces:
        resources = {resolve(resource) for resource in as_list(statement["Resource"])}
        assert resources == {
            "arn:aws:ec2:eu-west-1:123456789012:network-interface/*",
            "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0123456789abcdef0",
            "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0fedcba9876543210",
            "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0",
        }
    # And no statement anywhere lets a role write to any log group but its own (log deliveries of the state
    # machine are configured through the service, not written by the role)
    for statement in statements:
        writes = [action for action in as_list(statement["Action"]) if action in LOG_WRITES]
        if writes:
            assert "*" not in as_list(statement["Resource"]), writes


# --- alarms -------------------------------------------------------------------------------------------------


def alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """Alarm properties by the construct id CDK puts at the start of the logical id."""
    found = {}
    for logical_id, resource in synth.resources("AWS::CloudWatch::Alarm").items():
        for name in (
            "Api5xxRate",
            "LambdaErrors",
            "LambdaThrottles",
            "ApiLatencyP99",
            "Api4xxRate",
            "InternalErrorVerdicts",
        ):
            if name in logical_id:
                found[name] = resource["Properties"]
    return found


def test_every_alarm_notifies_the_alarm_topic_which_is_an_output(dev_synth: Synth) -> None:
    found = alarms(dev_synth)
    assert len(found) == len(dev_synth.resources("AWS::CloudWatch::Alarm")) == 6
    (topic_id,) = dev_synth.resources("AWS::SNS::Topic")
    for alarm in found.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    assert dev_synth.template["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_latency_alarm_fires_near_the_api_timeout(dev_synth: Synth) -> None:
    alarm = alarms(dev_synth)["ApiLatencyP99"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"]) == (
        "AWS/ApiGateway",
        "Latency",
        "p99",
    )
    assert SYNC_BUDGET_S * 1000 * 0.8 <= alarm["Threshold"] < API_INTEGRATION_TIMEOUT_S * 1000


def test_client_error_alarm_watches_the_4xx_rate(dev_synth: Synth) -> None:
    alarm = alarms(dev_synth)["Api4xxRate"]
    assert (alarm["MetricName"], alarm["Statistic"]) == ("4XXError", "Average")  # a rate: 429s and 403s
    assert 0 < alarm["Threshold"] < 1


def test_internal_error_alarm_sums_the_emf_metric_the_handler_emits(
    dev_synth: Synth, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the EMF line the handler writes for a run that ended internal_error
    observability.set_metrics_enabled(True)
    observability.record_execution(
        ExecuteResponse(
            status="failed",
            stdout="",
            stderr="",
            execution_time=0.1,
            exit_code=None,
            verdict=Verdict.INTERNAL_ERROR,
            execution_id="x",
            language="python",
        )
    )
    observability.metrics.flush_metrics()
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    # When the alarm's metrics are read from the template
    queries = alarms(dev_synth)["InternalErrorVerdicts"]["Metrics"]
    metrics = [query["MetricStat"]["Metric"] for query in queries if "MetricStat" in query]
    (expression,) = [query["Expression"] for query in queries if "Expression" in query]
    # Then it adds up one metric per language, each with exactly the namespace, name and dimensions emitted
    assert len(metrics) == len(LANGUAGES)
    for metric in metrics:
        dimensions = {item["Name"]: item["Value"] for item in metric["Dimensions"]}
        assert metric["Namespace"] == directive["Namespace"]
        assert metric["MetricName"] == "Executions"
        assert set(dimensions) == set(directive["Dimensions"][0])
        assert dimensions["verdict"] == emf["verdict"] == "internal_error"
        assert dimensions["service"] == emf["service"]
    assert {m["Dimensions"][0]["Value"] for m in metrics} | {
        next(d["Value"] for d in m["Dimensions"] if d["Name"] == "language") for m in metrics
    } >= {language.name for language in LANGUAGES}
    assert expression.count("FILL(") == len(LANGUAGES)


# --- outputs and WAF ----------------------------------------------------------------------------------------


def evaluate(synth: Synth, value: Any) -> Any:
    """The intrinsics an image reference is made of, evaluated as CloudFormation would in the test account."""
    if isinstance(value, list):
        return [evaluate(synth, item) for item in value]
    if not (isinstance(value, dict) and len(value) == 1):
        return value
    ((function, argument),) = value.items()
    resources = synth.template["Resources"]

    def name(logical_id: str) -> str:
        return (
            "amazonaws.com"
            if logical_id == "AWS::URLSuffix"
            else resources[logical_id]["Properties"]["RepositoryName"]
        )

    functions: dict[str, Callable[[], Any]] = {
        "Ref": lambda: name(argument),
        "Fn::GetAtt": lambda: f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name(argument[0])}",
        "Fn::Split": lambda: evaluate(synth, argument[1]).split(argument[0]),
        "Fn::Select": lambda: evaluate(synth, argument[1])[argument[0]],
        "Fn::Join": lambda: str(argument[0]).join(evaluate(synth, part) for part in argument[1]),
    }
    return functions[function]()


def test_every_runner_image_starts_with_the_prefix_output_for_the_admission_policy(any_synth: Synth) -> None:
    # Given the images the Lambda runs and the prefix the stack tells the operator to admit
    images = json.loads(evaluate(any_synth, lambda_environment(any_synth)["EXEC_RUNNER_IMAGES"]))
    prefix = evaluate(any_synth, any_synth.template["Outputs"]["RunnerImagePrefix"]["Value"])
    # Then every image starts with it, and it admits nothing but the runner repositories of this registry
    assert prefix.startswith(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/")
    assert prefix.endswith("code-exec-runner-")
    assert len(images) == len(LANGUAGES)
    assert all(image.startswith(prefix) for image in images.values()), (prefix, images)


def test_the_function_the_preflight_reads_is_an_output(dev_synth: Synth) -> None:
    target = execute_function(dev_synth)
    (function_id,) = [lid for lid, resource in dev_synth.template["Resources"].items() if resource is target]
    assert dev_synth.template["Outputs"][EXECUTE_FUNCTION_OUTPUT]["Value"] == {"Ref": function_id}


def test_no_waf_unless_asked(dev_synth: Synth) -> None:
    assert dev_synth.resources("AWS::WAFv2::WebACL") == {}


def test_waf_rate_rule_limits_each_client_ip_and_guards_the_stage(prod_iam_synth: Synth) -> None:
    # Given -c wafRateLimitPer5Min=1000
    acl = prod_iam_synth.only("AWS::WAFv2::WebACL")["Properties"]
    association = prod_iam_synth.only("AWS::WAFv2::WebACLAssociation")["Properties"]
    # Then one regional ACL allows by default and blocks a client IP beyond 1000 requests in 5 minutes
    # with 429, and it is attached to the API stage
    assert (acl["Scope"], acl["DefaultAction"]) == ("REGIONAL", {"Allow": {}})
    (rule,) = acl["Rules"]
    assert rule["Statement"]["RateBasedStatement"] == {
        "Limit": 1000,
        "AggregateKeyType": "IP",
        "EvaluationWindowSec": 300,
    }
    assert rule["Action"] == {"Block": {"CustomResponse": {"ResponseCode": 429}}}
    (stage_id,) = prod_iam_synth.resources("AWS::ApiGateway::Stage")
    assert stage_id in json.dumps(association["ResourceArn"])


def test_make_bootstrap_and_destroy_build_the_lambda_bundle_first() -> None:
    makefile = (Path(REPO_ROOT) / "Makefile").read_text()
    for target in ("bootstrap", "destroy", "deploy", "synth", "diff"):
        (line,) = [line for line in makefile.splitlines() if line.startswith(f"{target}:")]
        assert line.split(":", 1)[1].split("##")[0].split() == ["build"], line
