"""One synthesis per app variant per test session (Node start + synth take seconds), shared by every test.

Synthesis runs the cdk-nag AwsSolutions plugin: any unacknowledged finding makes `app.synth()` raise, so
a fixture that returns at all has proven the variant nag-clean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii starts Node on import; on Node 20 it prints an end-of-life banner on every start.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLUSTER = "code-exec-test"
ORIGIN = "https://app.example.com"


@dataclass(frozen=True)
class Synth:
    outdir: Path
    stack_name: str
    template: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str) -> dict[str, Any]:
        found = list(self.resources(resource_type).values())
        assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
        return found[0]


def base_context(bundle_dir: Path) -> dict[str, Any]:
    return {
        "account": ACCOUNT,
        "region": REGION,
        "clusterName": CLUSTER,
        "corsOrigins": [ORIGIN],
        # Synthesis only stages the bundle folder; the real bundle is tested in test_bundle.py.
        "lambdaBundleDir": str(bundle_dir),
    }


def synthesize(outdir: Path, context: dict[str, Any]) -> Synth:
    from cdk.app import build_app

    app, stack = build_app(context=context, outdir=str(outdir))
    assembly = app.synth()
    template = assembly.get_stack_by_name(stack.stack_name).template
    return Synth(outdir=outdir, stack_name=stack.stack_name, template=template)


@pytest.fixture(scope="session")
def placeholder_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("placeholder-bundle")
    (bundle / "README.txt").write_text("stand-in for build/lambda during synthesis tests\n")
    return bundle


@pytest.fixture(scope="session")
def dev_synth(tmp_path_factory: pytest.TempPathFactory, placeholder_bundle: Path) -> Synth:
    """The default deployment: dev, API key auth, images built as assets and copied into the stack's ECR."""
    return synthesize(tmp_path_factory.mktemp("cdk-dev"), base_context(placeholder_bundle))


@pytest.fixture(scope="session")
def prod_iam_synth(tmp_path_factory: pytest.TempPathFactory, placeholder_bundle: Path) -> Synth:
    """The other branches: prod, IAM auth, prebuilt images (make build-push-runners), Lambda in a VPC,
    dedicated arm64 nodes with gVisor, a smaller Job quota, a WAF rate rule."""
    context = {
        **base_context(placeholder_bundle),
        "environment": "prod",
        "authMode": "iam",
        "imageSource": "registry",
        "imageTag": "abc1234",
        # CLI-style strings: `-c subnetIds=a,b` must work as well as JSON lists.
        "subnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        "securityGroupIds": "sg-0123456789abcdef0",
        "imagePlatform": "linux/arm64",
        "runtimeClassName": "gvisor",
        "runnerNodeSelector": "code-exec/untrusted=true",
        "runnerTolerations": "code-exec/untrusted=true:NoSchedule",
        "jobQuota": "40",
        "wafRateLimitPer5Min": "1000",
    }
    return synthesize(tmp_path_factory.mktemp("cdk-prod"), context)


@pytest.fixture(scope="session", params=["dev", "prod-iam"])
def any_synth(request: pytest.FixtureRequest) -> Synth:
    name = "dev_synth" if request.param == "dev" else "prod_iam_synth"
    synth: Synth = request.getfixturevalue(name)
    return synth


def resolve(value: Any) -> Any:
    """Render CloudFormation intrinsics into readable placeholders so templates can be compared as text."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        rendered = _render_intrinsic(key, argument)
        if rendered is not None:
            return rendered
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item) for item in value]
    return value


def _render_intrinsic(key: str, argument: Any) -> str | None:
    if key == "Ref":
        return f"<{argument}>"
    if key == "Fn::GetAtt":
        return f"<{argument[0]}.{argument[1]}>"
    if key == "Fn::Join":
        separator, parts = argument
        return str(separator).join(str(resolve(part)) for part in parts)
    if key in ("Fn::Select", "Fn::Split", "Fn::Sub"):
        return f"<{key}>"
    return None


def execute_function(synth: Synth) -> dict[str, Any]:
    """The API's Lambda (the template also holds the image-copy custom resource's function)."""
    for resource in synth.resources("AWS::Lambda::Function").values():
        if resource["Properties"].get("Handler") == "functions.api.handler.lambda_handler":
            return resource
    raise AssertionError("no execute Lambda in the template")


def lambda_environment(synth: Synth) -> dict[str, Any]:
    variables: dict[str, Any] = execute_function(synth)["Properties"]["Environment"]["Variables"]
    return variables
