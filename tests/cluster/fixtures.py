"""Session fixtures for tests against the real control plane (loaded by tests/cluster/conftest.py).

- `cluster`                -> ClusterInfo: server_url, ca_path, admin_kubeconfig, controller_kubeconfig
                              (Paths in a temp dir), node_name; started once per session, stopped at its end.
- `cluster_namespace`      -> str: the namespace of k8s/overlays/dev ("runner-dev"), applied as admin and
                              ready for pods (its ServiceAccounts exist).
- `admin_api_client`       -> kubernetes.client.ApiClient as the admin (system:masters).
- `controller_api_client`  -> kubernetes.client.ApiClient as the controller identity
                              (user code-exec-controller, group code-exec:controllers): what the service uses.

Without Go the suite skips with the reason, except under CI=true, where it fails: CI never skips it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
