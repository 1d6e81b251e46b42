"""Failure paths of the Kubernetes backend on the real control plane: API errors, a dropped watch, a full
quota, an image that cannot start, and the orphan sweeper.

Where a fault is injected: a real apiserver cannot be told to answer 500/429 or to drop one watch
connection, so those faults are injected at the client's transport (the urllib3 PoolManager every request
of the official client goes through; see `FaultyTransport`). Everything else is real: the quota is a real
ResourceQuota enforced by admission, the unknown image is refused by the node agent as a kubelet refuses
an image it cannot pull, the orphan is a real Job left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from functions.backends.kubernetes.constants import DEADLINE_LABEL
from functions.backends.kubernetes.job_builder import JobTemplate, build_job
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.spec import prepare_run
from functions.settings import Settings
from functions.wiring import sync_policy
from tests.cluster import manifests
from tests.cluster.harness import REPO_ROOT, ClusterInfo
from tests.cluster.manifests import TEST_IMAGE_REGISTRY
from tests.cluster.test_kubernetes_backend_support import (
    OURS,
    CutStream,
    Deployment,
    Fault,
    deployment,
    error_response,
    inject,
    nothing_left,
)
from tests.cluster.waits import wait_for, wait_gone
from tests.conftest import Invoke

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("nothing_left")]
__all__ = ["deployment", "nothing_left"]  # fixtures, re-exported for pytest

HELLO = {"language": "python", "code": 'print("Hello, World!")', "encoding": "text"}
DEV_OVERLAY = REPO_ROOT / "k8s" / "overlays" / "dev"
UNSTARTABLE_BOUND_S = 10.0  # the bound for an image that cannot be pulled
QUOTA_READY_TIMEOUT_S = 30.0
NAMESPACE_GONE_TIMEOUT_S = 90.0


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def creates_job(method: str, url: str) -> bool:
    return method == "POST" and urlsplit(url).path.endswith("/jobs")


def deletes_job(method: str, url: str) -> bool:
    return method == "DELETE" and "/jobs/" in urlsplit(url).path


def lists_pods(method: str, url: str) -> bool:
    return method == "GET" and urlsplit(url).path.endswith("/pods") and "watch" not in _query(url)


def watches_pods(method: str, url: str) -> bool:
    return method == "GET" and urlsplit(url).path.endswith("/pods") and _query(url).get("watch") == ["true"]


def reads_log(method: str, url: str) -> bool:
    return method == "GET" and urlsplit(url).path.endswith("/log")


def answer(status: int, retry_after_s: int | None = None) -> Callable[[Any, str, str, dict[str, Any]], Any]:
    return lambda _real, _method, _url, _kwargs: error_response(status, retry_after_s=retry_after_s)


def accepted_hello(invoke: Invoke, *, code: str = HELLO["code"]) -> None:
    response = invoke("POST", "/execute", {**HELLO, "code": code})
    assert response.status == 200, response.body[:500]
    assert (response.json()["verdict"], response.json()["stdout"]) == ("accepted", "Hello, World!\n")


@pytest.mark.parametrize(
    "request_matches",
    [
        pytest.param(creates_job, id="create-job"),
        pytest.param(lists_pods, id="list-pods"),
        pytest.param(reads_log, id="read-log"),
        pytest.param(deletes_job, id="delete-job"),  # `nothing_left` then proves the Job was deleted
    ],
)
def test_api_500_and_429_are_retried_then_the_run_succeeds(
    invoke: Invoke,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    request_matches: Callable[[str, str], bool],
) -> None:
    # Given the API answers this request with 500, then 429 (Retry-After 0), then for real (injected at
    # the transport: a real apiserver cannot be made to fail on demand)
    transport = inject(deployment.backends[-1], monkeypatch)
    transport.faults = [
        Fault(request_matches, answer(500)),
        Fault(request_matches, answer(429, retry_after_s=0)),
    ]
    # When a program runs
    accepted_hello(invoke)
    # Then both faults were met and retried past
    assert [fault.fired for fault in transport.faults] == [1, 1]
    assert sum(request_matches(method, url) for method, url in transport.requests) == 3


def test_persistent_api_errors_are_502(
    invoke: Invoke, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given every create answered 503 (injected at the transport)
    transport = inject(deployment.backends[-1], monkeypatch)
    transport.faults = [Fault(creates_job, answer(503), times=100)]
    # When a program is sent
    response = invoke("POST", "/execute", HELLO)
    # Then, after the bounded retries, the caller hears that the backend failed
    assert response.status == 502, response.body[:500]
    assert response.json()["error"] == "backend_unavailable"
    assert transport.faults[0].fired == Settings().k8s_api_max_attempts


def test_watch_dropped_mid_run_resumes_from_its_resource_version(
    invoke: Invoke, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first pod watch is cut after its first chunk, as a dropped connection would be (injected at
    # the transport: the apiserver cannot be told to drop one connection)
    transport = inject(deployment.backends[-1], monkeypatch)
    cut_after_first_chunk = Fault(
        watches_pods,
        lambda real, method, url, kwargs: CutStream(real.request(method, url, **kwargs), chunks=1),
    )
    transport.faults = [cut_after_first_chunk]
    # When a program runs that ends a second after it starts (so its end cannot arrive in that first chunk)
    accepted_hello(invoke, code='import time\ntime.sleep(1)\nprint("Hello, World!")')
    # Then the result still came back, and the watch resumed from a resourceVersion instead of relisting
    assert cut_after_first_chunk.fired == 1
    watches = [url for method, url in transport.requests if watches_pods(method, url)]
    assert len(watches) >= 2
    assert all(_query(url).get("resourceVersion") for url in watches)
    assert sum(lists_pods(method, url) for method, url in transport.requests) == 1


def test_expired_resource_version_relists(
    invoke: Invoke, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first watch is refused with 410 Gone (injected: its resourceVersion "expired")
    transport = inject(deployment.backends[-1], monkeypatch)
    transport.faults = [Fault(watches_pods, answer(410))]
    # When a program runs
    accepted_hello(invoke)
    # Then the backend listed again and finished normally
    assert transport.faults[0].fired == 1
    assert sum(lists_pods(method, url) for method, url in transport.requests) == 2


def test_unknown_image_is_502_promptly(invoke: Invoke, deployment: Deployment) -> None:
    # Given a language whose image no node can pull (the node agent reports ErrImagePull, as a kubelet does)
    deployment.build(runner_images={"python": f"{TEST_IMAGE_REGISTRY}/code-exec-runner-missing:0"})
    # When a program is sent
    started_s = time.monotonic()
    response = invoke("POST", "/execute", HELLO)
    elapsed_s = time.monotonic() - started_s
    # Then the caller hears "backend failed" within the bound, not after the whole budget
    assert response.status == 502, response.body[:500]
    assert "ErrImagePull" in response.json()["message"]
    assert elapsed_s < UNSTARTABLE_BOUND_S


@pytest.fixture
def full_namespace(
    cluster_bin_dir: Any, admin_api_client: client.ApiClient, cluster_namespace: str
) -> Iterator[str]:
    """A namespace like runner-dev whose ResourceQuota allows one Job, already taken by another Job."""
    name = f"runner-full-{uuid.uuid4().hex[:6]}"
    documents = [
        {**doc, "metadata": {**doc["metadata"], "namespace": name}}
        for doc in manifests.render(cluster_bin_dir / "kustomize", DEV_OVERLAY)
        if doc["kind"] in {"ServiceAccount", "Role", "RoleBinding"}
    ]
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "tiny", "namespace": name},
        "spec": {"hard": {"count/jobs.batch": "1"}},
    }
    core, batch = client.CoreV1Api(admin_api_client), client.BatchV1Api(admin_api_client)
    manifests.apply(admin_api_client, [namespace, quota, *documents])
    try:
        # Admission refuses every create until the quota controller has computed the quota's status.
        wait_for(
            core.list_namespaced_resource_quota,
            lambda quotas: bool(quotas and quotas[0].status and quotas[0].status.hard),
            timeout_s=QUOTA_READY_TIMEOUT_S,
            namespace=name,
        )
        settings = Settings()
        registry = load_registry(settings.runners_dir)
        request = ExecuteRequest(language="python", code="import time\ntime.sleep(60)", encoding="text")
        filler = build_job(
            prepare_run(request, registry, sync_policy(settings)).task,
            JobTemplate(namespace=name),
            now_s=time.time(),
        )
        batch.create_namespaced_job(name, filler)
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")
        wait_gone(core.list_namespace, NAMESPACE_GONE_TIMEOUT_S, field_selector=f"metadata.name={name}")


def test_exhausted_quota_is_503_with_retry_after(
    invoke: Invoke, deployment: Deployment, full_namespace: str
) -> None:
    # Given the namespace's quota is used up (a real ResourceQuota, enforced by the real admission)
    settings = Settings()
    deployment.namespace = full_namespace
    deployment.build()
    # When a program is sent
    response = invoke("POST", "/execute", HELLO)
    # Then the caller is told to come back later, without waiting for anything
    assert response.status == 503, response.body[:500]
    assert response.json()["error"] == "capacity_exhausted"
    assert response.header("Retry-After") == str(settings.k8s_quota_retry_after_s)


def run_sweeper(cluster: ClusterInfo, namespace: str, now_s: float) -> list[str]:
    """The sweeper's CLI, as an operator or a schedule runs it, as the controller identity."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "EXEC_BACKEND": "kubernetes",
        "EXEC_K8S_AUTH": "kubeconfig",
        "EXEC_KUBECONFIG": str(cluster.controller_kubeconfig),
        "EXEC_K8S_NAMESPACE": namespace,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "functions.backends.kubernetes.sweeper", "--now", str(now_s)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )
    result = json.loads(completed.stdout)
    assert result["namespace"] == namespace
    deleted: list[str] = result["deleted"]
    return deleted


def test_sweeper_removes_an_orphaned_job(
    deployment: Deployment, cluster: ClusterInfo, cluster_namespace: str, admin_api_client: client.ApiClient
) -> None:
    # Given a Job whose creator died mid-run: submitted, never waited for, never deleted
    settings = Settings()
    request = ExecuteRequest(
        language="python", code="import time\ntime.sleep(60)", encoding="text", timeout=20
    )
    task = prepare_run(request, load_registry(settings.runners_dir), sync_policy(settings)).task
    name = deployment.backends[-1].jobs.submit(task)
    batch = client.BatchV1Api(admin_api_client)
    metadata = batch.read_namespaced_job(name, cluster_namespace).metadata
    assert metadata is not None
    assert metadata.labels is not None
    deadline_s = int(metadata.labels[DEADLINE_LABEL])
    # When the sweeper runs before the Job's deadline, it leaves the Job alone
    assert name not in run_sweeper(cluster, cluster_namespace, now_s=deadline_s - 1)
    batch.read_namespaced_job(name, cluster_namespace)
    # And when it runs after the deadline, it deletes the Job (and, in the background, its pod)
    assert run_sweeper(cluster, cluster_namespace, now_s=deadline_s + 1) == [name]
    wait_gone(batch.list_namespaced_job, 30.0, namespace=cluster_namespace, label_selector=OURS)
