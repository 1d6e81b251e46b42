"""cdk-nag, cfn-lint and the context validation: the synthesized app is clean, and bad context is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cdk.config import DeploySettings
from cdk.nag import MIN_REASON_CHARS, acknowledge
from tests.infrastructure.conftest import Synth

VALID = {"account": "123456789012", "region": "eu-west-1", "clusterName": "c"}


def nag_acknowledgements(synth: Synth) -> list[dict[str, Any]]:
    found = []
    for resource in synth.template["Resources"].values():
        found += resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return found


def test_cdk_nag_reports_no_unacknowledged_finding(any_synth: Synth) -> None:
    # Given a synthesis that returned (cdk-nag 3 raises ValidationFailed on any finding)
    report = json.loads((any_synth.outdir / "validation-report.json").read_text())
    # Then the report written next to the templates lists no violation either
    violations = [violation for plugin in report["pluginReports"] for violation in plugin["violations"]]
    assert violations == []


def test_every_acknowledgement_carries_a_reason(any_synth: Synth) -> None:
    acknowledgements = nag_acknowledgements(any_synth)
    assert acknowledgements, "the AwsSolutions pack must have run and been acknowledged somewhere"
    for acknowledgement in acknowledgements:
        assert acknowledgement["id"].startswith("AwsSolutions-")
        assert len(acknowledgement["reason"]) >= MIN_REASON_CHARS, acknowledgement


def test_an_acknowledgement_without_a_real_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="real reason"):
        acknowledge(None, "AwsSolutions-L1", "n/a")  # type: ignore[arg-type]


def test_cfn_lint_finds_no_error_in_any_template(any_synth: Synth) -> None:
    # Given every template synthesis wrote (W3005 warnings for CDK's redundant DependsOn are not errors)
    templates = sorted(str(path) for path in Path(any_synth.outdir).glob("*.template.json"))
    assert templates
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or "cfn-lint"
    # When cfn-lint checks them
    result = subprocess.run(
        [cfn_lint, "--non-zero-exit-code", "error", *templates], capture_output=True, text=True, check=False
    )
    # Then it exits 0
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"imageSource": "registry"}, "needs imageTag"),
        ({"subnetIds": "subnet-1"}, "go together"),
        ({"authMode": "iam", "corsOrigins": "*"}, "not allowed with IAM"),
        ({"environment": "staging"}, "environment"),
        ({"account": "12345"}, "account"),
        ({"logRetentionDays": 42}, "logRetentionDays"),
        ({"authMode": "cognito"}, "authMode"),
        ({"clusterName": ""}, "clusterName"),
        ({"runnerTolerations": "dedicated=true"}, "runnerTolerations"),
        ({"runtimeClassName": "gVisor!"}, "runtimeClassName"),
        ({"jobQuota": "0"}, "jobQuota"),
        ({"wafRateLimitPer5Min": "5"}, "wafRateLimitPer5Min"),
    ],
    ids=[
        "registry-without-tag",
        "subnets-without-security-groups",
        "iam-with-wildcard-origin",
        "unknown-environment",
        "short-account",
        "unsupported-retention",
        "unknown-auth-mode",
        "empty-cluster-name",
        "toleration-without-effect",
        "runtime-class-not-a-name",
        "no-jobs-at-all",
        "waf-limit-below-the-minimum",
    ],
)
def test_bad_context_is_refused_with_a_message(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeploySettings.model_validate({**VALID, **overrides})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://a.example, https://b.example", ("https://a.example", "https://b.example")),
        ('["https://a.example"]', ("https://a.example",)),
        (["https://a.example"], ("https://a.example",)),
        ("", ()),
    ],
    ids=["comma-string", "json-string", "list", "empty"],
)
def test_cors_origins_accept_cli_strings_and_lists(value: Any, expected: tuple[str, ...]) -> None:
    assert DeploySettings.model_validate({**VALID, "corsOrigins": value}).cors_origins == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("code-exec/untrusted=true, pool=runners", {"code-exec/untrusted": "true", "pool": "runners"}),
        ('{"code-exec/untrusted": "true"}', {"code-exec/untrusted": "true"}),
        ({"pool": "runners"}, {"pool": "runners"}),
        ("", {}),
    ],
    ids=["comma-string", "json-string", "object", "empty"],
)
def test_runner_node_selector_accepts_cli_strings_and_objects(value: Any, expected: dict[str, str]) -> None:
    settings = DeploySettings.model_validate({**VALID, "runnerNodeSelector": value})
    assert settings.node_selector == {**expected, "kubernetes.io/arch": "amd64"}
