"""`preflight --stack`: the service's settings come from the deployed Lambda (moto's CloudFormation and Lambda)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from functions import cli
from functions.aws.deployed_settings import (
    EXECUTE_FUNCTION_OUTPUT,
    DeployedStackError,
    deployed_environment,
    settings_with,
)

REGION = "eu-west-1"
STACK = "CodeExec-dev"
LAMBDA_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "code-exec",
    "EXEC_BACKEND": "kubernetes",
    "EXEC_K8S_AUTH": "eks",
    "EXEC_EKS_CLUSTER_NAME": "prod-cluster",
    "EXEC_K8S_NAMESPACE": "runner-prod",
    "EXEC_K8S_RUNTIME_CLASS_NAME": "gvisor",
    "EXEC_K8S_NODE_SELECTOR": json.dumps({"kubernetes.io/arch": "arm64"}),
    "EXEC_RUNNER_IMAGES": json.dumps({"python": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/r/py:abc"}),
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Fake credentials so nothing can reach a real account; moto intercepts every call.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "EXEC_K8S_NAMESPACE",
        "EXEC_K8S_RUNTIME_CLASS_NAME",
        "EXEC_K8S_NODE_SELECTOR",
        "EXEC_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


def deploy(outputs: dict[str, str]) -> None:
    """A stack whose outputs are `outputs`, next to the function the real stack's output would name."""
    role = boto3.client("iam").create_role(
        RoleName="execute", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "def handler(event, context):\n    return event\n")
    boto3.client("lambda").create_function(
        FunctionName="CodeExec-dev-ExecuteFunction",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": LAMBDA_ENVIRONMENT},
    )
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


@pytest.mark.usefixtures("aws")
def test_the_deployed_lambda_s_exec_variables_become_the_settings() -> None:
    # Given a deployed stack naming its execute Lambda
    deploy({EXECUTE_FUNCTION_OUTPUT: "CodeExec-dev-ExecuteFunction"})
    # When its environment is read
    environment = deployed_environment(STACK)
    settings = settings_with(environment)
    # Then only EXEC_* variables come back, and the settings are the service's
    assert set(environment) == {key for key in LAMBDA_ENVIRONMENT if key.startswith("EXEC_")}
    assert (settings.k8s_namespace, settings.k8s_runtime_class_name) == ("runner-prod", "gvisor")
    assert settings.k8s_node_selector == {"kubernetes.io/arch": "arm64"}
    assert settings.eks_cluster_name == "prod-cluster"


@pytest.mark.usefixtures("aws")
def test_a_variable_set_by_the_operator_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    deploy({EXECUTE_FUNCTION_OUTPUT: "CodeExec-dev-ExecuteFunction"})
    monkeypatch.setenv("EXEC_K8S_NAMESPACE", "runner-canary")
    assert settings_with(deployed_environment(STACK)).k8s_namespace == "runner-canary"


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        pytest.param(None, "cannot read the deployed stack", id="no-stack"),
        pytest.param({"ApiUrl": "https://x"}, f"no output {EXECUTE_FUNCTION_OUTPUT}", id="older-stack"),
        pytest.param({EXECUTE_FUNCTION_OUTPUT: "gone"}, "cannot read", id="function-deleted"),
    ],
)
@pytest.mark.usefixtures("aws")
def test_a_stack_that_cannot_be_read_is_a_clear_error(outputs: dict[str, str] | None, message: str) -> None:
    if outputs is not None:
        deploy(outputs)
    with pytest.raises(DeployedStackError, match=message):
        deployed_environment(STACK)


@pytest.mark.usefixtures("aws")
def test_preflight_with_an_unknown_stack_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["preflight", "--stack", "CodeExec-nope"]) == cli.USAGE_ERROR_EXIT
    assert "cannot read the deployed stack CodeExec-nope" in capsys.readouterr().err
