"""The preflight's judgements that need no cluster: which NetworkPolicies deny everything, what the egress
canary's output means, and how the report reads. The checks against a real apiserver are in
tests/cluster/test_preflight.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import V1NetworkPolicy

from functions.backends.kubernetes.preflight.canary import (
    NETWORK_POLICY_ENGINE_FIX,
    RunOutcome,
    egress_check,
    image_check,
)
from functions.backends.kubernetes.preflight.cluster import allowing_policies, denies_all_traffic
from functions.backends.kubernetes.preflight.model import CheckResult, PreflightReport, Status
from functions.core.languages import TEST_PROGRAM_OUTPUT
from functions.core.models import ExecuteResponse
from functions.core.verdicts import Verdict

DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def policy(name: str, spec: dict[str, Any]) -> V1NetworkPolicy:
    made = V1NetworkPolicy.from_dict({"metadata": {"name": name}, "spec": spec})
    assert made is not None
    return made


@pytest.mark.parametrize(
    ("spec", "denies_all"),
    [
        pytest.param(DENY_ALL, True, id="deny-all"),
        pytest.param({**DENY_ALL, "policyTypes": ["Ingress"]}, False, id="ingress-only"),
        pytest.param({**DENY_ALL, "podSelector": {"matchLabels": {"a": "b"}}}, False, id="some-pods-only"),
        pytest.param(
            {**DENY_ALL, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, False, id="allows-egress"
        ),
    ],
)
def test_only_a_policy_selecting_every_pod_both_ways_with_no_rule_denies_all(
    spec: dict[str, Any], denies_all: bool
) -> None:
    assert denies_all_traffic(policy("p", spec)) is denies_all


def test_any_allow_rule_in_the_namespace_is_named() -> None:
    # Given deny-all next to a policy that lets DNS out (allow rules add up: the pod may then resolve names)
    dns = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}],
    }
    # Then the allowing policy is named
    assert allowing_policies([policy("deny", DENY_ALL), policy("dns", dns)]) == ["dns"]


def response(stdout: str, verdict: Verdict = Verdict.ACCEPTED) -> ExecuteResponse:
    return ExecuteResponse(
        status="success",
        stdout=stdout,
        stderr="",
        execution_time=0.1,
        exit_code=0,
        verdict=verdict,
        execution_id="x",
        language="python",
    )


TARGETS = [("API server 10.0.0.1:443", "10.0.0.1", 443), ("cluster DNS 10.100.0.10:53", "10.100.0.10", 53)]


def test_egress_canary_that_reached_something_fails_and_names_the_missing_engine() -> None:
    # Given a canary that reached the API server while DNS timed out
    output = json.dumps({TARGETS[0][0]: "open", TARGETS[1][0]: "blocked: timed out"})
    # When its output is judged
    result = egress_check(RunOutcome(response(output), None, 1.0), TARGETS, [])
    # Then the check fails on the reached target, with the policy engine as the fix
    assert (result.status, result.fix) == (Status.FAIL, NETWORK_POLICY_ENGINE_FIX)
    assert result.detail == "a runner pod reached API server 10.0.0.1:443"


def test_egress_canary_that_reached_nothing_passes_listing_each_target() -> None:
    output = json.dumps({name: "blocked: Network is unreachable" for name, _, _ in TARGETS})
    result = egress_check(RunOutcome(response(output), None, 1.0), TARGETS, ["no cluster DNS Service"])
    assert result.status is Status.PASS
    assert "reached none of 2 targets" in result.detail
    assert result.detail.endswith("; no cluster DNS Service")


def test_egress_canary_that_did_not_run_fails_with_the_reason() -> None:
    result = egress_check(RunOutcome(None, "ErrImagePull", 1.0), TARGETS, [])
    assert result.status is Status.FAIL
    assert "did not run: ErrImagePull" in result.detail


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        pytest.param(RunOutcome(response(TEST_PROGRAM_OUTPUT), None, 2.0), Status.PASS, id="quick"),
        pytest.param(RunOutcome(response(TEST_PROGRAM_OUTPUT), None, 20.0), Status.WARN, id="slow-cold-pull"),
        pytest.param(
            RunOutcome(response("", Verdict.RUNTIME_ERROR), None, 2.0), Status.FAIL, id="broken-runner"
        ),
        pytest.param(RunOutcome(None, "not scheduled", 28.0), Status.FAIL, id="never-ran"),
    ],
)
def test_image_check_judges_the_test_program_run(outcome: RunOutcome, status: Status) -> None:
    assert image_check("python", outcome, budget_s=28.0).status is status


def test_report_fails_on_any_failure_and_prints_each_fix() -> None:
    report = PreflightReport(
        (
            CheckResult("namespace", Status.PASS, "ok"),
            CheckResult("runtime class", Status.WARN, "none", "install gVisor"),
            CheckResult("network policy", Status.FAIL, "missing", "apply k8s"),
        )
    )
    lines = report.lines()
    assert not report.ok
    assert lines[3].split() == ["FAIL", "network", "policy", "missing"]
    assert lines[4].strip() == "fix: apply k8s"
    assert lines[-1] == "preflight FAILED: 1 pass, 1 warn, 1 fail"
    assert PreflightReport(report.results[:2]).ok
