"""Fixtures and helpers for the Kubernetes backend suites (test_kubernetes_backend*.py); holds no test.

The service under test is the real one: the Lambda handler, the core, and `KubernetesBackend` talking to the
real apiserver as the controller identity (group code-exec:controllers) in the `restricted` runner-dev
namespace. Only the handler's service lookup is swapped, so a test can choose the backend's settings.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3
from kubernetes import client

from functions import wiring
from functions.backends.kubernetes.backend import KubernetesBackend, create_backend
from functions.backends.kubernetes.constants import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from functions.core.languages import load_registry
from functions.core.service import ExecutionService
from functions.settings import Settings
from tests.cluster.harness import ClusterInfo
from tests.cluster.manifests import TEST_IMAGE_REGISTRY
from tests.cluster.waits import wait_gone

OURS = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
CLEANUP_TIMEOUT_S = 30.0


def k8s_settings(cluster: ClusterInfo, namespace: str, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "backend": "kubernetes",
        "k8s_auth": "kubeconfig",
        "kubeconfig": cluster.controller_kubeconfig,
        "k8s_namespace": namespace,
        "runner_image_registry": TEST_IMAGE_REGISTRY,
    }
    fields.update(overrides)
    return Settings(**fields)


def use_backend(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    backend: KubernetesBackend,
    *,
    sync_budget_s: float | None,
) -> None:
    """Route the handler's requests to `backend` (everything else as `wiring.build_service` does it)."""
    service = ExecutionService(
        backend=backend,
        registry=load_registry(settings.runners_dir),
        policy=wiring.sync_policy(settings),
        sync_budget_s=settings.sync_budget_s if sync_budget_s is None else sync_budget_s,
    )
    monkeypatch.setattr(wiring, "get_service", lambda: service)


@dataclass
class Deployment:
    """A backend wired into the handler; `build` swaps in another one (other settings) for one test."""

    cluster: ClusterInfo
    namespace: str
    monkeypatch: pytest.MonkeyPatch
    backends: list[KubernetesBackend] = field(default_factory=list)

    def build(self, *, sync_budget_s: float | None = None, **overrides: Any) -> KubernetesBackend:
        settings = k8s_settings(self.cluster, self.namespace, **overrides)
        backend = create_backend(settings)
        self.backends.append(backend)
        use_backend(self.monkeypatch, settings, backend, sync_budget_s=sync_budget_s)
        return backend

    def close(self) -> None:
        for backend in self.backends:
            backend.jobs.close()


@pytest.fixture
def deployment(
    cluster: ClusterInfo, cluster_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    """The handler serving with the Kubernetes backend (default settings) for the duration of a test."""
    deployed = Deployment(cluster, cluster_namespace, monkeypatch)
    deployed.build()
    try:
        yield deployed
    finally:
        deployed.close()


@pytest.fixture
def nothing_left(admin_api_client: client.ApiClient, cluster_namespace: str) -> Iterator[None]:
    """After the test: no Job and no pod of ours remains in the namespace (checked as admin, on a watch)."""
    yield
    batch, core = client.BatchV1Api(admin_api_client), client.CoreV1Api(admin_api_client)
    for list_fn in (batch.list_namespaced_job, core.list_namespaced_pod):
        wait_gone(list_fn, CLEANUP_TIMEOUT_S, namespace=cluster_namespace, label_selector=OURS)


# --- fault injection at the client's transport ----------------------------------------------------------
# A real apiserver cannot be made to answer 500 or 429 on demand, nor to cut one watch mid-stream; those
# faults are injected in the one object every request of the official client goes through: the urllib3
# PoolManager of its RESTClientObject. Everything else (apiserver, controllers, node agent) stays real.

Matcher = Callable[[str, str], bool]


@dataclass
class Fault:
    matches: Matcher
    respond: Callable[[Any, str, str, dict[str, Any]], Any]
    times: int = 1
    fired: int = 0


def error_response(status: int, *, retry_after_s: int | None = None) -> urllib3.HTTPResponse:
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status}).encode()
    headers = {"Content-Type": "application/json"}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return urllib3.HTTPResponse(
        body=io.BytesIO(body), status=status, headers=headers, preload_content=False, reason="injected"
    )


class CutStream:
    """The real watch response, cut after `chunks` chunks as a dropped connection would be."""

    def __init__(self, real: urllib3.BaseHTTPResponse, chunks: int) -> None:
        self._real = real
        self._chunks = chunks

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for index, chunk in enumerate(self._real.stream(*args, **kwargs)):
            if index >= self._chunks:
                break
            yield chunk
        self._real.close()
        raise urllib3.exceptions.ProtocolError("injected: connection broken mid-watch")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FaultyTransport:
    """Stands in for the client's PoolManager: applies the first matching fault, else passes through."""

    def __init__(self, real: urllib3.PoolManager) -> None:
        self.real = real
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.requests.append((method, url))
        for fault in self.faults:
            if fault.fired < fault.times and fault.matches(method, url):
                fault.fired += 1
                return fault.respond(self.real, method, url, kwargs)
        return self.real.request(method, url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def inject(backend: KubernetesBackend, monkeypatch: pytest.MonkeyPatch) -> FaultyTransport:
    rest = backend.jobs.api_client.rest_client
    transport = FaultyTransport(rest.pool_manager)
    monkeypatch.setattr(rest, "pool_manager", transport)
    return transport
