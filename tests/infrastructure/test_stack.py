"""The synthesized stack: the resources of the deployment, with their key properties."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdk.config import API_INTEGRATION_TIMEOUT_S, LAMBDA_TIMEOUT_S, SYNC_BUDGET_S
from functions.api.routes import API_TITLE, API_VERSION, app
from functions.backends.kubernetes.constants import CONTROLLER_GROUP
from functions.core.languages import LanguageSpec, load_registry
from functions.settings import Settings
from tests.infrastructure.conftest import (
    CLUSTER,
    ORIGIN,
    REGION,
    REPO_ROOT,
    Synth,
    execute_function,
    lambda_environment,
    resolve,
)

LANGUAGES = load_registry(REPO_ROOT / "runners").all()
ROUTES = [
    ("/execute", "POST"),
    ("/executions", "POST"),
    ("/executions/{execution_id}", "GET"),
    ("/executions/{execution_id}", "DELETE"),
    ("/health", "GET"),
    ("/languages", "GET"),
    ("/openapi.json", "GET"),
    ("/judge0/about", "GET"),
    ("/judge0/config_info", "GET"),
    ("/judge0/languages", "GET"),
    ("/judge0/languages/{language_id}", "GET"),
    ("/judge0/statuses", "GET"),
    ("/judge0/submissions", "POST"),
    ("/judge0/submissions/batch", "GET"),
    ("/judge0/submissions/batch", "POST"),
    ("/judge0/submissions/{token}", "GET"),
    ("/judge0/submissions/{token}", "DELETE"),
]


def methods(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    """(path, HTTP method) -> AWS::ApiGateway::Method properties."""
    resources = synth.resources("AWS::ApiGateway::Resource")

    def path_of(reference: dict[str, Any]) -> str:
        if "Ref" not in reference:
            return ""  # the API's root resource (a GetAtt)
        properties = resources[reference["Ref"]]["Properties"]
        return path_of(properties["ParentId"]) + "/" + str(properties["PathPart"])

    found = {}
    for resource in synth.resources("AWS::ApiGateway::Method").values():
        properties = resource["Properties"]
        found[(path_of(properties["ResourceId"]) or "/", properties["HttpMethod"])] = properties
    return found


def policy_statements(synth: Synth) -> list[dict[str, Any]]:
    statements = []
    for resource in synth.resources("AWS::IAM::Policy").values():
        statements += resource["Properties"]["PolicyDocument"]["Statement"]
    for resource in synth.resources("AWS::IAM::Role").values():
        for policy in resource["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- ECR and images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: language.name)
def test_each_language_has_a_scanned_immutable_repository_with_lifecycle(
    dev_synth: Synth, language: LanguageSpec
) -> None:
    # Given the dev stack (images built as assets and copied into the stack's repositories)
    repositories = {
        resource["Properties"]["RepositoryName"]: resource["Properties"]
        for resource in dev_synth.resources("AWS::ECR::Repository").values()
    }
    # When we look up the language's repository by the image name from language.json
    repository = repositories[f"code-exec-dev/{language.image}"]
    # Then it scans on push, refuses tag overwrites and expires old images
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    rules = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert {rule["selection"]["tagStatus"] for rule in rules} == {"untagged", "any"}


def test_there_is_exactly_one_repository_per_language(dev_synth: Synth) -> None:
    assert len(dev_synth.resources("AWS::ECR::Repository")) == len(LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda language: language.name)
def test_image_asset_context_holds_the_runner_and_only_its_language(
    dev_synth: Synth, language: LanguageSpec
) -> None:
    # Given the asset manifest written by synthesis (no Docker needed: assets are only staged)
    manifest = json.loads((dev_synth.outdir / f"{dev_synth.stack_name}.assets.json").read_text())
    (image,) = [
        entry
        for entry in manifest["dockerImages"].values()
        if entry["displayName"] == f"runner-{language.name}"
    ]
    # When we list the staged build context
    context = dev_synth.outdir / image["source"]["directory"]
    top_level = {path.name for path in context.iterdir()} - {".dockerignore"}
    # Then it is runners/runner, the shared hardening script and the language's own folder, built for the
    # cluster's platform
    assert top_level == {"runner", "harden-image.sh", language.name}
    assert (context / "harden-image.sh").is_file()
    assert (context / "runner" / "runner.py").is_file()
    assert image["source"]["dockerFile"] == f"{language.name}/Dockerfile"
    assert image["source"]["platform"] == "linux/amd64"


# --- Lambda ---------------------------------------------------------------------------------------------


def test_lambda_environment_carries_image_uris_namespace_and_cluster(dev_synth: Synth) -> None:
    # Given the execute Lambda's environment
    env = lambda_environment(dev_synth)
    # When the image map's intrinsics are rendered
    images = json.loads(resolve(env["EXEC_RUNNER_IMAGES"]))
    # Then every language points at its stack repository, tagged with the asset's content hash
    assert set(images) == {language.name for language in LANGUAGES}
    for language in LANGUAGES:
        assert f"/<RunnerImages{language.name}Repository" in images[language.name]
        assert len(images[language.name].rsplit(":", 1)[1]) == 64  # sha256 asset hash as the tag
    assert env["EXEC_BACKEND"] == "kubernetes"
    assert env["EXEC_K8S_AUTH"] == "eks"
    assert env["EXEC_K8S_NAMESPACE"] == "runner-dev"
    assert env["EXEC_EKS_CLUSTER_NAME"] == CLUSTER
    assert env["POWERTOOLS_SERVICE_NAME"] == "code-exec"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == env["EXEC_METRICS_NAMESPACE"] == "CodeExec"
    assert env["LOG_LEVEL"] == "INFO"


def test_prebuilt_images_are_referenced_by_tag_in_the_shared_repositories(prod_iam_synth: Synth) -> None:
    # Given imageSource=registry and imageTag=abc1234 (make create-ecr-repos + build-push-runners)
    images = json.loads(resolve(lambda_environment(prod_iam_synth)["EXEC_RUNNER_IMAGES"]))
    # Then each language uses <registry>/<image>:abc1234 and the stack creates no repository or copy
    for language in LANGUAGES:
        assert images[language.name].endswith(f"/{language.image}:abc1234")
    assert prod_iam_synth.resources("AWS::ECR::Repository") == {}
    assert prod_iam_synth.resources("Custom::CDKECRDeployment") == {}
    assert lambda_environment(prod_iam_synth)["EXEC_K8S_NAMESPACE"] == "runner-prod"


def test_every_exec_variable_is_a_setting_the_service_accepts(
    any_synth: Synth, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the Lambda's EXEC_* variables (the image map's tokens replaced by a literal map) as the only
    # EXEC_* variables of this process
    env = {key: value for key, value in lambda_environment(any_synth).items() if key.startswith("EXEC_")}
    env["EXEC_RUNNER_IMAGES"] = json.dumps({language.name: f"r/{language.image}:t" for language in LANGUAGES})
    env["EXEC_STATE_MACHINE_ARN"] = (
        f"arn:aws:states:{REGION}:123456789012:stateMachine:CodeExec-dev-executions"
    )
    for key in [key for key in os.environ if key.startswith("EXEC_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # When the service's Settings read the environment, as at a cold start
    settings = Settings()
    # Then no variable is silently ignored and the values arrive
    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(key for key in env if key.removeprefix("EXEC_") not in fields) == []
    assert settings.backend == "kubernetes"
    assert settings.sync_budget_s == SYNC_BUDGET_S
    assert set(settings.runner_images) == {language.name for language in LANGUAGES}


def test_lambda_runtime_sizing_tracing_and_log_retention(dev_synth: Synth) -> None:
    properties = execute_function(dev_synth)["Properties"]
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["x86_64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["MemorySize"] == 512
    # The function outlives API Gateway's 29 s (to clean up) and the service's budget ends before both.
    assert properties["Timeout"] == LAMBDA_TIMEOUT_S
    assert SYNC_BUDGET_S < API_INTEGRATION_TIMEOUT_S < LAMBDA_TIMEOUT_S
    log_group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    assert dev_synth.template["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 30


def test_lambda_waits_for_its_images_to_be_copied(dev_synth: Synth) -> None:
    depends_on = execute_function(dev_synth).get("DependsOn", [])
    copies = dev_synth.resources("Custom::CDKECRDeployment")
    assert len(copies) == len(LANGUAGES)
    assert set(copies) <= set(depends_on)


def test_lambda_runs_in_the_configured_subnets(prod_iam_synth: Synth) -> None:
    vpc = execute_function(prod_iam_synth)["Properties"]["VpcConfig"]
    assert vpc == {
        "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }


# --- API ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_routes_proxy_to_the_lambda_within_the_integration_timeout(
    any_synth: Synth, path: str, method: str
) -> None:
    properties = methods(any_synth)[(path, method)]
    integration = properties["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert integration["TimeoutInMillis"] == API_INTEGRATION_TIMEOUT_S * 1000
    assert "<ExecuteFunction" in resolve(integration["Uri"])


@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_api_key_mode_requires_a_key_on_every_route(dev_synth: Synth, path: str, method: str) -> None:
    assert methods(dev_synth)[(path, method)]["ApiKeyRequired"] is True


@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_iam_mode_requires_sigv4_on_every_route(prod_iam_synth: Synth, path: str, method: str) -> None:
    assert methods(prod_iam_synth)[(path, method)]["AuthorizationType"] == "AWS_IAM"


def test_every_operation_of_the_api_document_is_routed() -> None:
    # Given the operations the handler documents (its OpenAPI document, as the service serves it)
    document = json.loads(app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION))
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    # Then API Gateway routes each of them to the handler
    assert documented <= set(ROUTES)


def test_only_cors_preflights_are_open(any_synth: Synth) -> None:
    open_methods = {
        key
        for key, properties in methods(any_synth).items()
        if properties.get("AuthorizationType", "NONE") == "NONE" and not properties.get("ApiKeyRequired")
    }
    assert open_methods
    assert {method for _, method in open_methods} == {"OPTIONS"}


def test_usage_plan_throttles_and_limits_the_api_key(dev_synth: Synth) -> None:
    plan = dev_synth.only("AWS::ApiGateway::UsagePlan")["Properties"]
    assert plan["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
    assert plan["Quota"] == {"Limit": 10000, "Period": "DAY"}
    assert len(dev_synth.resources("AWS::ApiGateway::UsagePlanKey")) == 1
    assert len(dev_synth.resources("AWS::ApiGateway::ApiKey")) == 1


def test_iam_mode_has_no_api_key(prod_iam_synth: Synth) -> None:
    assert prod_iam_synth.resources("AWS::ApiGateway::ApiKey") == {}


def test_stage_throttles_traces_and_writes_access_logs(any_synth: Synth) -> None:
    stage = any_synth.only("AWS::ApiGateway::Stage")["Properties"]
    assert stage["TracingEnabled"] is True
    assert "DestinationArn" in stage["AccessLogSetting"]
    assert json.loads(stage["AccessLogSetting"]["Format"])["status"] == "$context.status"
    (method_settings,) = stage["MethodSettings"]
    assert method_settings["ThrottlingRateLimit"] == 10
    assert method_settings["ThrottlingBurstLimit"] == 20
    assert method_settings["DataTraceEnabled"] is False  # bodies carry users' code


def test_cors_preflight_allows_the_configured_origin(dev_synth: Synth) -> None:
    preflight = methods(dev_synth)[("/execute", "OPTIONS")]
    (response,) = preflight["Integration"]["IntegrationResponses"]
    assert (
        response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"] == f"'{ORIGIN}'"
    )


# --- EKS access and IAM ---------------------------------------------------------------------------------


def rolebinding_groups() -> set[str]:
    """Subjects of kind Group of the RoleBindings in k8s/base (the constant when k8s/ is absent)."""
    groups = set()
    for manifest in sorted((REPO_ROOT / "k8s" / "base").glob("*.yaml")):
        for document in yaml.safe_load_all(manifest.read_text()):
            if document and document.get("kind") == "RoleBinding":
                groups |= {s["name"] for s in document.get("subjects", []) if s["kind"] == "Group"}
    return groups or {CONTROLLER_GROUP}


def test_access_entries_put_the_lambda_roles_into_the_rolebinding_group(dev_synth: Synth) -> None:
    # Given the access entries: the execute Lambda's role and the workflow tasks' role
    entries = [resource["Properties"] for resource in dev_synth.resources("AWS::EKS::AccessEntry").values()]
    principals = sorted(resolve(entry["PrincipalArn"]) for entry in entries)
    assert [principal.split("Role")[0] for principal in principals] == ["<Execute", "<WorkflowTask"]
    for entry in entries:
        assert set(entry["KubernetesGroups"]) == rolebinding_groups() == {CONTROLLER_GROUP}
        assert entry["ClusterName"] == CLUSTER
        assert entry["Type"] == "STANDARD"
        # No EKS access policy: authorisation is the namespaced RBAC Role only.
        assert "AccessPolicies" not in entry


def test_no_iam_statement_grants_everything_or_all_of_eks(any_synth: Synth) -> None:
    for statement in policy_statements(any_synth):
        actions = as_list(statement.get("Action", []))
        assert "*" not in actions
        assert not [action for action in actions if action.lower().startswith("eks:") and "*" in action]


def test_eks_rights_are_describe_cluster_on_the_one_cluster(any_synth: Synth) -> None:
    eks_statements = [
        statement
        for statement in policy_statements(any_synth)
        if any(action.startswith("eks:") for action in as_list(statement["Action"]))
    ]
    # One per role that talks to the cluster: the execute Lambda's and the workflow tasks'
    assert (
        eks_statements
        == [
            {
                "Action": "eks:DescribeCluster",
                "Effect": "Allow",
                "Resource": f"arn:aws:eks:{REGION}:123456789012:cluster/{CLUSTER}",
            }
        ]
        * 2
    )


def test_wildcard_resources_are_only_for_actions_without_resource_level_permissions(any_synth: Synth) -> None:
    allowed = {
        "ecr:GetAuthorizationToken",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        # The state machine's X-Ray sampling and its vended-logs delivery to CloudWatch Logs.
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
    for statement in policy_statements(any_synth):
        if "*" in as_list(statement.get("Resource", [])):
            assert set(as_list(statement["Action"])) <= allowed, statement


# --- Monitoring -----------------------------------------------------------------------------------------


def test_dashboard_shows_runs_by_language_and_verdict_latency_errors_throttles(dev_synth: Synth) -> None:
    body = resolve(dev_synth.only("AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    assert 'Namespace=\\"CodeExec\\" MetricName=\\"Executions\\"' in body
    for needle in ('"p50"', '"p99"', '"5XXError"', '"Errors"', '"Throttles"'):
        assert needle in body


def test_alarm_topic_is_encrypted_and_tls_only(dev_synth: Synth) -> None:
    topic = dev_synth.only("AWS::SNS::Topic")["Properties"]
    assert "KmsMasterKeyId" in topic
    policy = dev_synth.only("AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
    assert any(
        statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for statement in policy["Statement"]
    )


# --- Lifecycle per environment ----------------------------------------------------------------------------


def test_prod_keeps_logs_and_dev_cleans_up(dev_synth: Synth, prod_iam_synth: Synth) -> None:
    for synth, policy in ((dev_synth, "Delete"), (prod_iam_synth, "Retain")):
        log_groups = synth.resources("AWS::Logs::LogGroup").values()
        assert {resource["DeletionPolicy"] for resource in log_groups} == {policy}


def test_cdk_json_context_is_a_valid_default_deployment() -> None:
    # Given cdk.json as committed (account/region come from the CLI or the Makefile's dummies)
    from cdk.config import DeploySettings

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    # Then it validates and names the dev namespace
    settings = DeploySettings.model_validate({**context, "account": "123456789012", "region": "eu-west-1"})
    assert settings.namespace == "runner-dev"
    assert Path(settings.lambda_bundle_dir) == Path("build/lambda")


def test_make_create_ecr_repos_uses_the_stacks_lifecycle_rules(dev_synth: Synth) -> None:
    # Given the policy `make create-ecr-repos` applies and the one the stack gives its repositories
    manual = json.loads((REPO_ROOT / "scripts" / "ecr-lifecycle-policy.json").read_text())
    repository = next(iter(dev_synth.resources("AWS::ECR::Repository").values()))
    stack = json.loads(repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
    # Then both deployment paths expire images the same way
    assert manual == stack
