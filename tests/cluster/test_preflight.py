"""The preflight against the real control plane: it passes on a namespace made from k8s/, and each prerequisite
removed makes it fail on the check that names it, with the fix.

Each test gets a runner namespace of its own (k8s/overlays/dev under a fresh name) to break. The preflight
reads as the admin (the operator) and acts as the service by impersonating its group, as on EKS. Egress
targets are the test cluster's own addresses and a listener on loopback: nothing beyond this machine.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from functions.backends.kubernetes.constants import CONTROLLER_GROUP
from functions.backends.kubernetes.preflight.cli import Options, impersonating, run_preflight
from functions.backends.kubernetes.preflight.model import Context, PreflightReport, Status
from functions.settings import Settings
from tests.cluster.fixtures import RunnerNamespaces
from tests.cluster.harness import REPO_ROOT, ClusterInfo, api_client_for
from tests.cluster.manifests import TEST_ADMISSION_PARAMS, TEST_IMAGE_REGISTRY, wait_admission_policy
from tests.cluster.node_agent import NODE_ARCH

pytestmark = pytest.mark.cluster

OPTIONS = Options(as_group=CONTROLLER_GROUP, run_timeout_s=30.0)
CONFIGURATION_ONLY = Options(as_group=CONTROLLER_GROUP, runs=False)


def preflight_settings(cluster: ClusterInfo, namespace: str, **overrides: Any) -> Settings:
    """The service's settings for `namespace`, connected as the admin (the operator running the preflight)."""
    fields: dict[str, Any] = {
        "k8s_auth": "kubeconfig",
        "kubeconfig": cluster.admin_kubeconfig,
        "k8s_namespace": namespace,
        "runner_image_registry": TEST_IMAGE_REGISTRY,
        **overrides,
    }
    return Settings(**fields)


def preflight(cluster: ClusterInfo, namespace: str, options: Options, **settings: Any) -> PreflightReport:
    with api_client_for(cluster.admin_kubeconfig) as operator:
        context = Context(
            settings=preflight_settings(cluster, namespace, **settings),
            operator=operator,
            service=impersonating(operator, options.as_user, options.as_group),
        )
        return run_preflight(context, options)


def statuses(report: PreflightReport) -> dict[str, Status]:
    return {result.name: result.status for result in report.results}


def result(report: PreflightReport, name: str) -> tuple[Status, str, str]:
    (found,) = [item for item in report.results if item.name == name]
    return found.status, found.detail, found.fix


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on loopback that accepts connections: proof a "blocked" is not just "nothing listens"."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


def test_preflight_passes_on_a_namespace_made_from_k8s(
    cluster: ClusterInfo, runner_namespaces: RunnerNamespaces, listener: socket.socket
) -> None:
    # Given a runner namespace as k8s/overlays/dev makes it, and a service placed on nodes of its images' arch
    namespace = runner_namespaces()
    arch = NODE_ARCH.get(platform.machine(), platform.machine())
    target = f"127.0.0.1:{listener.getsockname()[1]}"
    options = Options(as_group=CONTROLLER_GROUP, run_timeout_s=30.0, extra_egress_targets=(target,))
    # When the whole preflight runs, canary and image Jobs included
    report = preflight(
        cluster,
        namespace,
        options,
        k8s_node_selector={"kubernetes.io/arch": arch},
        k8s_tolerations=["code-exec/untrusted=true:NoSchedule"],
    )
    # Then every check passes (no RuntimeClass is configured: a warning, not a failure)
    assert report.ok, "\n".join(report.lines())
    expected = dict.fromkeys(statuses(report), Status.PASS) | {"runtime class": Status.WARN}
    assert statuses(report) == expected
    assert {f"runner image {language}" for language in ("cpp", "java", "javascript", "python")} <= set(
        expected
    )
    # And the egress canary tried the API server, its Service address and the operator's target, reaching none
    _, detail, _ = result(report, "egress blocked")
    assert "API server 127.0.0.1:" in detail
    assert "API Service 10.96.0.1:443" in detail
    assert target in detail
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_cli_fails_when_the_network_policy_is_deleted(
    cluster: ClusterInfo, runner_namespaces: RunnerNamespaces, admin_api_client: client.ApiClient
) -> None:
    # Given a runner namespace whose deny-all NetworkPolicy was deleted
    namespace = runner_namespaces()
    client.NetworkingV1Api(admin_api_client).delete_namespaced_network_policy("runner-deny-all", namespace)
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("EXEC_")},
        "PYTHONPATH": str(REPO_ROOT),
        "EXEC_KUBECONFIG": str(cluster.admin_kubeconfig),
        "EXEC_K8S_NAMESPACE": namespace,
        "EXEC_RUNNER_IMAGE_REGISTRY": TEST_IMAGE_REGISTRY,
    }
    # When an operator runs `python -m functions preflight`
    completed = subprocess.run(
        [sys.executable, "-m", "functions", "preflight", "--run-timeout", "30"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    # Then it exits 1, naming the missing policy and how to restore it
    lines = completed.stdout.splitlines()
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert any(line.split()[:3] == ["FAIL", "network", "policy"] for line in lines), completed.stdout
    assert "fix: kubectl apply -k k8s/overlays/<environment>" in completed.stdout
    assert lines[-1].startswith("preflight FAILED")
    # The canary still finds egress blocked: the test cluster's pods have no network at all (the node agent's
    # sandbox), so here only the presence check can see the policy is gone. On EKS without a policy engine it
    # is the other way round: the policy is present and the canary reaches the API server.
    assert any(line.split()[:3] == ["PASS", "egress", "blocked"] for line in lines), completed.stdout


Breakage = Callable[[client.ApiClient, str], None]


def _remove_pod_security(admin: client.ApiClient, namespace: str) -> None:
    labels = {f"pod-security.kubernetes.io/{mode}": None for mode in ("enforce", "audit", "warn")}
    client.CoreV1Api(admin).patch_namespace(namespace, {"metadata": {"labels": labels}})


def _narrow_rbac(admin: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    role = rbac.read_namespaced_role("runner-controller", namespace)
    assert role.rules is not None
    role.rules[0].verbs = [verb for verb in role.rules[0].verbs if verb != "delete"]
    rbac.replace_namespaced_role("runner-controller", namespace, role)


def _widen_rbac(admin: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    role = rbac.read_namespaced_role("runner-controller", namespace)
    assert role.rules is not None
    role.rules.append(client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["get"]))
    rbac.replace_namespaced_role("runner-controller", namespace, role)


def _unbind_admission_policy(admin: client.ApiClient, namespace: str) -> None:
    client.AdmissionregistrationV1Api(admin).delete_validating_admission_policy_binding(
        f"{namespace}.code-exec-runner-pods"
    )
    wait_admission_policy(admin, namespace, in_force=False)


def _other_image_prefix(admin: client.ApiClient, namespace: str) -> None:
    params = {"data": {"imagePrefix": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/elsewhere/"}}
    client.CoreV1Api(admin).patch_namespaced_config_map("runner-admission", namespace, params)


def _delete_quota(admin: client.ApiClient, namespace: str) -> None:
    client.CoreV1Api(admin).delete_namespaced_resource_quota("runner-quota", namespace)


@dataclass(frozen=True)
class Removed:
    """A prerequisite taken away, and what the preflight must then say."""

    breakage: Breakage
    check: str
    says: str
    fix: str


REMOVED = [
    pytest.param(
        Removed(_remove_pod_security, "namespace", "Pod Security nothing", "label"), id="psa-label-removed"
    ),
    pytest.param(
        Removed(_narrow_rbac, "service RBAC", "may not delete jobs", "rbac.yaml"), id="rbac-narrowed"
    ),
    pytest.param(
        Removed(_widen_rbac, "service RBAC", "more than it needs: get secrets", "remove"), id="rbac-widened"
    ),
    pytest.param(
        Removed(_unbind_admission_policy, "admission guardrails", "is admitted", "admission-policy.yaml"),
        id="policy-unbound",
    ),
    pytest.param(
        Removed(_other_image_prefix, "admission guardrails", "Job is refused", "imagePrefix"),
        id="image-prefix-wrong",
    ),
    pytest.param(
        Removed(_delete_quota, "resource quota", "no ResourceQuota", "resourcequota.yaml"), id="quota-deleted"
    ),
]


@pytest.mark.parametrize("removed", REMOVED)
def test_a_removed_prerequisite_fails_its_check_with_the_fix(
    cluster: ClusterInfo,
    runner_namespaces: RunnerNamespaces,
    admin_api_client: client.ApiClient,
    removed: Removed,
) -> None:
    # Given a runner namespace of this test's own with one prerequisite removed
    namespace = runner_namespaces()
    removed.breakage(admin_api_client, namespace)
    # When the preflight checks the configuration
    report = preflight(cluster, namespace, CONFIGURATION_ONLY)
    # Then it fails, on that check only, saying what is wrong and how to fix it
    assert not report.ok
    status, detail, remedy = result(report, removed.check)
    assert (status, removed.says in detail, removed.fix in remedy) == (Status.FAIL, True, True), (
        detail,
        remedy,
    )
    assert [name for name, found in statuses(report).items() if found is Status.FAIL] == [removed.check]


def test_a_configured_runtime_class_that_does_not_exist_fails(
    cluster: ClusterInfo, runner_namespaces: RunnerNamespaces
) -> None:
    namespace = runner_namespaces({**TEST_ADMISSION_PARAMS, "runtimeClassName": "gvisor"})
    report = preflight(cluster, namespace, CONFIGURATION_ONLY, k8s_runtime_class_name="gvisor")
    status, detail, remedy = result(report, "runtime class")
    assert (status, detail) == (Status.FAIL, "RuntimeClass gvisor does not exist: no runner pod can start")
    assert "gVisor" in remedy


def test_canary_jobs_no_node_can_take_name_the_scheduler_s_reason(
    cluster: ClusterInfo, runner_namespaces: RunnerNamespaces
) -> None:
    # Given a service placed on a dedicated node group this cluster does not have
    namespace = runner_namespaces()
    options = Options(as_group=CONTROLLER_GROUP, run_timeout_s=3.0)
    # When the canary and image Jobs run
    report = preflight(cluster, namespace, options, k8s_node_selector={"code-exec/untrusted": "true"})
    # Then each fails with the scheduler's own explanation, and the fix names the node selector
    status, detail, _ = result(report, "egress blocked")
    assert status is Status.FAIL
    assert "not scheduled (Unschedulable)" in detail
    status, detail, remedy = result(report, "runner image python")
    assert status is Status.FAIL
    assert "didn't match Pod's node affinity/selector" in detail
    assert "node selector" in remedy
