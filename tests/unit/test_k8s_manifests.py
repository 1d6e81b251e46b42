"""The k8s/ kustomize tree: renders, validates against the Kubernetes schema, and grants nothing extra."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from functions.backends.kubernetes.constants import (
    ADMISSION_PARAMS_CONFIGMAP,
    CONTROLLER_GROUP,
    CONTROLLER_PERMISSIONS,
)
from functions.settings import Settings

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"
OVERLAYS = {"dev": "runner-dev", "prod": "runner-prod"}
KUBERNETES_VERSION = "1.34"


@cache
def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to render k8s/ (kubectl kustomize); install it or put it on PATH")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]


def by_kind(overlay: str) -> dict[str, dict[str, Any]]:
    documents = render(overlay)
    kinds = {document["kind"]: document for document in documents}
    assert len(kinds) == len(documents), "one object per kind is expected in the runner namespace"
    return kinds


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_rendered_object_is_schema_valid(overlay: str) -> None:
    # Given the rendered overlay
    documents = render(overlay)
    # Then it holds the whole base, and each object validates strictly (unknown fields are errors)
    assert {document["kind"] for document in documents} == {
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "NetworkPolicy",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(("overlay", "namespace"), sorted(OVERLAYS.items()))
def test_overlay_puts_everything_in_its_namespace(overlay: str, namespace: str) -> None:
    kinds = by_kind(overlay)
    assert kinds["Namespace"]["metadata"]["name"] == namespace
    assert {doc["metadata"]["namespace"] for kind, doc in kinds.items() if kind != "Namespace"} == {namespace}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_namespace_enforces_restricted_pod_security(overlay: str) -> None:
    labels = by_kind(overlay)["Namespace"]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_role_grants_exactly_what_the_backend_uses(overlay: str) -> None:
    rules = by_kind(overlay)["Role"]["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == set(CONTROLLER_PERMISSIONS)
    assert len(CONTROLLER_PERMISSIONS) == len(granted)
    assert all("*" not in str(rule) for rule in rules)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_role_binding_subject_is_the_controller_group(overlay: str) -> None:
    # The same constant names the group in the CDK access entry and the test cluster's controller identity.
    binding = by_kind(overlay)["RoleBinding"]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": CONTROLLER_GROUP}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": by_kind(overlay)["Role"]["metadata"]["name"],
    }


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_network_policy_denies_all_traffic_of_every_pod(overlay: str) -> None:
    spec = by_kind(overlay)["NetworkPolicy"]["spec"]
    assert spec == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_runner_service_account_matches_settings_and_mounts_no_token(overlay: str) -> None:
    account = by_kind(overlay)["ServiceAccount"]
    assert account["metadata"]["name"] == Settings().k8s_service_account
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_quota_gates_on_jobs_before_pods(overlay: str) -> None:
    # A full quota must reject the Job create (-> 503 at once), not leave a Job whose pods never come.
    hard = by_kind(overlay)["ResourceQuota"]["spec"]["hard"]
    assert int(hard["count/jobs.batch"]) < int(hard["pods"])


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_limit_range_admits_the_largest_sandbox_of_the_settings(overlay: str) -> None:
    (limits,) = by_kind(overlay)["LimitRange"]["spec"]["limits"]
    settings = Settings()
    # Headroom above the largest request for a runtime's overhead or a compiler's need.
    assert _mebibytes(limits["max"]["memory"]) >= settings.max_memory_limit_mb + 512
    assert _mebibytes(limits["min"]["memory"]) <= settings.min_memory_limit_mb


def _mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize(("overlay", "namespace"), sorted(OVERLAYS.items()))
def test_admission_policy_is_named_after_and_bound_to_its_namespace_only(
    overlay: str, namespace: str
) -> None:
    # Given the overlay's cluster-scoped policy and binding
    kinds = by_kind(overlay)
    policy, binding = kinds["ValidatingAdmissionPolicy"], kinds["ValidatingAdmissionPolicyBinding"]
    # Then both carry the namespace in their name (one pair per environment, removed with it) and the
    # binding selects that namespace by its immutable name label, refusing (not warning) on a violation
    assert policy["metadata"]["name"].startswith(f"{namespace}.")
    assert binding["metadata"]["name"] == binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}]
    }
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["failurePolicy"] == "Fail"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_admission_policy_fails_closed_without_its_parameters(overlay: str) -> None:
    kinds = by_kind(overlay)
    param_ref = kinds["ValidatingAdmissionPolicyBinding"]["spec"]["paramRef"]
    # The parameters are looked up in the namespace of the object admitted; without them nothing passes.
    assert param_ref == {"name": ADMISSION_PARAMS_CONFIGMAP, "parameterNotFoundAction": "Deny"}
    params = kinds["ConfigMap"]
    assert params["metadata"]["name"] == ADMISSION_PARAMS_CONFIGMAP
    assert params["data"]["serviceAccountName"] == Settings().k8s_service_account
    # The registry path is the deployment's: the committed overlays admit no image until it is set.
    assert params["data"]["imagePrefix"] == ""


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_admission_policy_covers_jobs_pods_and_init_containers(overlay: str) -> None:
    spec = by_kind(overlay)["ValidatingAdmissionPolicy"]["spec"]
    rules = {
        (group, resource)
        for rule in spec["matchConstraints"]["resourceRules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        if {"CREATE", "UPDATE"} <= set(rule["operations"])
    }
    assert rules == {("", "pods"), ("batch", "jobs")}
    containers = next(v["expression"] for v in spec["variables"] if v["name"] == "containers")
    assert "initContainers" in containers
