"""Session fixtures for tests against the real control plane (loaded by tests/cluster/conftest.py).

- `cluster`                -> ClusterInfo: server_url, ca_path, admin_kubeconfig, controller_kubeconfig
                              (Paths in a temp dir), node_name; started once per session, stopped at its end.
- `cluster_namespace`      -> str: the namespace of k8s/overlays/dev ("runner-dev"), applied as admin and
                              ready for pods (its ServiceAccounts exist).
- `admin_api_client`       -> kubernetes.client.ApiClient as the admin (system:masters).
- `controller_api_client`  -> kubernetes.client.ApiClient as the controller identity
                              (user code-exec-controller, group code-exec:controllers): what the service uses.
- `runner_namespaces`      -> (per test) a factory of runner namespaces of the test's own: k8s/overlays/dev
                              applied under a fresh name, for tests that break a prerequisite; all deleted
                              (with their cluster-scoped admission policy and binding) after the test.

Without Go the suite skips with the reason, except under CI=true, where it fails: CI never skips it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster import manifests
from tests.cluster.build import BuildFailedError, GoMissingError, ensure_binaries
from tests.cluster.harness import DEV_OVERLAY, ClusterInfo, api_client_for, start_cluster, stop_cluster


@pytest.fixture(scope="session")
def cluster_bin_dir() -> Path:
    try:
        return ensure_binaries()
    except GoMissingError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the cluster suite never skips in CI: {exc}")
        pytest.skip(f"cluster suite skipped: {exc}")
    except BuildFailedError as exc:
        pytest.fail(f"building the test control plane failed: {exc}")


@pytest.fixture(scope="session")
def cluster(cluster_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    info = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield info
    finally:
        stop_cluster(info.state_dir)


@pytest.fixture(scope="session")
def admin_api_client(cluster: ClusterInfo) -> Iterator[client.ApiClient]:
    with api_client_for(cluster.admin_kubeconfig) as api_client:
        yield api_client


@pytest.fixture(scope="session")
def controller_api_client(cluster: ClusterInfo) -> Iterator[client.ApiClient]:
    with api_client_for(cluster.controller_kubeconfig) as api_client:
        yield api_client


@pytest.fixture(scope="session")
def cluster_namespace(cluster_bin_dir: Path, admin_api_client: client.ApiClient) -> str:
    """Apply k8s/overlays/dev as admin; the namespace once pods can be admitted into it."""
    if not DEV_OVERLAY.is_dir():
        pytest.fail(f"{DEV_OVERLAY} is missing: the cluster suite applies the repository's manifests")
    return manifests.apply_overlay(admin_api_client, cluster_bin_dir / "kustomize", DEV_OVERLAY)


RunnerNamespaces = Callable[..., str]


@pytest.fixture
def runner_namespaces(
    cluster_bin_dir: Path, admin_api_client: client.ApiClient, cluster_namespace: str
) -> Iterator[RunnerNamespaces]:
    """`make(admission_params=...)` -> the name of a new runner namespace like runner-dev; removed after."""
    made: list[str] = []

    def make(admission_params: Mapping[str, str] = manifests.TEST_ADMISSION_PARAMS) -> str:
        name = f"runner-t-{uuid.uuid4().hex[:8]}"
        made.append(name)
        kustomize = cluster_bin_dir / "kustomize"
        return manifests.apply_overlay(
            admin_api_client, kustomize, DEV_OVERLAY, namespace=name, admission_params=admission_params
        )

    try:
        yield make
    finally:
        core = client.CoreV1Api(admin_api_client)
        admission = client.AdmissionregistrationV1Api(admin_api_client)
        for name in made:
            core.delete_namespace(name, propagation_policy="Background")
            bindings = admission.list_validating_admission_policy_binding().items
            for binding_name in _names_under(name, [b.metadata for b in bindings]):
                admission.delete_validating_admission_policy_binding(binding_name)
            policies = admission.list_validating_admission_policy().items
            for policy_name in _names_under(name, [p.metadata for p in policies]):
                admission.delete_validating_admission_policy(policy_name)


def _names_under(namespace: str, metadata: list[client.V1ObjectMeta | None]) -> list[str]:
    """Names of the cluster-scoped objects an overlay named after `namespace` (`<namespace>.<name>`)."""
    names = [meta.name for meta in metadata if meta is not None and meta.name]
    return [name for name in names if name.startswith(f"{namespace}.")]
