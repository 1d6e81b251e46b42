"""Smoke tests of the real control plane with the plain `kubernetes` client: Jobs as the service creates them.

Everything goes through the real apiserver (PodSecurity, quota, RBAC), the real Job/TTL/GC controllers and
the real scheduler; the node agent runs the real runner program in the local sandbox.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.protocol import RunnerReport, RunnerTask, b64decode
from functions.core.spec import prepare_run
from functions.settings import get_settings
from functions.wiring import sync_policy
from tests.cluster.harness import ClusterInfo
from tests.cluster.manifests import TEST_IMAGE_REGISTRY
from tests.cluster.waits import job_condition, wait_for, wait_gone, wait_job_finished, wait_pod_terminated

pytestmark = pytest.mark.cluster

WAIT_S = 60.0
RUNNER_IMAGE = f"{TEST_IMAGE_REGISTRY}/code-exec-runner-python:test"


def runner_task(source: str, *, timeout_s: float = 5.0, memory_limit_mb: int = 128) -> RunnerTask:
    """A python task as the service prepares it (the expected outputs stay behind in its judging plan)."""
    settings = get_settings()
    request = ExecuteRequest(
        language="python", code=source, encoding="text", timeout=timeout_s, memory_limit_mb=memory_limit_mb
    )
    return prepare_run(request, load_registry(settings.runners_dir), sync_policy(settings)).task


def task_env(task: RunnerTask, chunk_chars: int) -> list[dict[str, str]]:
    """The task as RUNNER_TASK_CHUNKS + RUNNER_TASK_i: base64 of the JSON, cut into chunks."""
    encoded = base64.b64encode(task.model_dump_json().encode()).decode("ascii")
    chunks = [encoded[i : i + chunk_chars] for i in range(0, len(encoded), chunk_chars)]
    env = [{"name": "RUNNER_TASK_CHUNKS", "value": str(len(chunks))}]
    return env + [{"name": f"RUNNER_TASK_{i}", "value": chunk} for i, chunk in enumerate(chunks)]


def hardened_job(
    name: str,
    task: RunnerTask,
    *,
    memory: str = "256Mi",
    active_deadline_s: int | None = None,
    ttl_s: int | None = None,
    chunk_chars: int = 96 * 1024,
    image: str = RUNNER_IMAGE,
) -> client.V1Job:
    """A Job hardened as the service builds them (PSA `restricted`, the admission policy: our service account,
    no token, read-only root, limits; no retries), with the runner container of an interpreted language: the
    program's box and /tmp as emptyDirs."""
    container = {
        "name": "runner",
        "image": image,
        "env": [{"name": "RUNNER_PHASE", "value": "run"}, *task_env(task, chunk_chars)],
        "resources": {
            "requests": {"cpu": "100m", "memory": memory},
            "limits": {"cpu": "500m", "memory": memory},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "box", "mountPath": "/box"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "code-exec-smoke"}},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": "runner",
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [
                    {"name": "box", "emptyDir": {"sizeLimit": "16Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                ],
            },
        },
    }
    if active_deadline_s is not None:
        spec["activeDeadlineSeconds"] = active_deadline_s
    if ttl_s is not None:
        spec["ttlSecondsAfterFinished"] = ttl_s
    job = client.V1Job.from_dict(
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}
    )
    assert job is not None
    return job


def job_pods_selector(name: str) -> str:
    return f"batch.kubernetes.io/job-name={name}"


def wait_job_pods_gone(core: client.CoreV1Api, namespace: str, job_name: str) -> None:
    wait_gone(
        core.list_namespaced_pod, WAIT_S, namespace=namespace, label_selector=job_pods_selector(job_name)
    )


@pytest.fixture
def admin_batch(admin_api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(admin_api_client)


@pytest.fixture
def admin_core(admin_api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(admin_api_client)


@pytest.fixture
def job_name(
    cluster_namespace: str, admin_batch: client.BatchV1Api, admin_core: client.CoreV1Api
) -> Iterator[str]:
    """A fresh Job name; whatever Job of that name remains is deleted (Background) and its pods awaited."""
    name = f"smoke-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        admin_batch.delete_namespaced_job(name, cluster_namespace, propagation_policy="Background")
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    wait_job_pods_gone(admin_core, cluster_namespace, name)


def read_report(core: client.CoreV1Api, namespace: str, pod: client.V1Pod) -> RunnerReport:
    assert pod.metadata is not None
    assert pod.metadata.name is not None
    log = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="runner")
    return RunnerReport.model_validate_json(log)


def phase(pod: client.V1Pod) -> str | None:
    return pod.status.phase if pod.status else None


def terminated_state(pod: client.V1Pod) -> tuple[int, str | None]:
    """Exit code and reason of the pod's one container."""
    statuses = (pod.status.container_statuses if pod.status else None) or []
    assert len(statuses) == 1
    state = statuses[0].state
    assert state is not None
    assert state.terminated is not None
    return state.terminated.exit_code, state.terminated.reason


def test_hardened_job_runs_the_runner_and_reports_through_pod_log(
    cluster: ClusterInfo,
    cluster_namespace: str,
    admin_batch: client.BatchV1Api,
    admin_core: client.CoreV1Api,
    job_name: str,
) -> None:
    # Given a hello-world task split over several env chunks, in a Job hardened for PSA `restricted`
    task = runner_task('print("Hello, World!")')
    assert len(task_env(task, chunk_chars=200)) > 2
    job = hardened_job(job_name, task, chunk_chars=200)

    # When it is created through the apiserver
    started_s = time.monotonic()
    admin_batch.create_namespaced_job(cluster_namespace, job)
    pod = wait_pod_terminated(admin_core, cluster_namespace, job_name, WAIT_S)
    report = read_report(admin_core, cluster_namespace, pod)
    print(f"Job create -> pod terminated -> log read: {time.monotonic() - started_s:.2f} s")

    # Then it ran on the agent's node, the runner's report came back through pods/log, the Job completed
    assert pod.spec is not None
    assert pod.spec.node_name == cluster.node_name
    assert phase(pod) == "Succeeded"
    assert terminated_state(pod) == (0, "Completed")
    assert report.internal_error is None
    assert (report.cases[0].exit_code, report.cases[0].signal) == (0, None)
    assert b64decode(report.cases[0].stdout.data_b64) == b"Hello, World!\n"
    finished = wait_job_finished(admin_batch, cluster_namespace, job_name, WAIT_S)
    assert job_condition(finished, "Complete") is not None

    # When it is deleted with Background propagation, Then no pod of it remains
    admin_batch.delete_namespaced_job(job_name, cluster_namespace, propagation_policy="Background")
    wait_job_pods_gone(admin_core, cluster_namespace, job_name)


def test_container_killed_for_memory_fails_the_job_as_oomkilled(
    cluster_namespace: str, admin_batch: client.BatchV1Api, admin_core: client.CoreV1Api, job_name: str
) -> None:
    # Given a program allocating far beyond its container's 64Mi limit (the task's own limit is higher)
    source = "block = bytearray(400 * 1024 * 1024)\nprint(len(block))"
    job = hardened_job(job_name, runner_task(source, memory_limit_mb=512), memory="64Mi")

    # When the Job runs
    admin_batch.create_namespaced_job(cluster_namespace, job)
    pod = wait_pod_terminated(admin_core, cluster_namespace, job_name, WAIT_S)

    # Then the container ends with a non-zero exit code and reason OOMKilled, and the Job fails
    assert terminated_state(pod) == (137, "OOMKilled")
    assert phase(pod) == "Failed"
    finished = wait_job_finished(admin_batch, cluster_namespace, job_name, WAIT_S)
    assert job_condition(finished, "Failed") is not None


def _waiting_reason(pod: client.V1Pod) -> str | None:
    statuses = (pod.status.container_statuses if pod.status else None) or []
    waiting = [s.state.waiting for s in statuses if s.state and s.state.waiting]
    return waiting[0].reason if waiting else None


def test_image_of_no_known_language_is_reported_as_err_image_pull(
    cluster_namespace: str, admin_batch: client.BatchV1Api, admin_core: client.CoreV1Api, job_name: str
) -> None:
    # Given a Job whose image matches no runners/*/language.json
    image = f"{TEST_IMAGE_REGISTRY}/no-such-runner:1"
    admin_batch.create_namespaced_job(
        cluster_namespace, hardened_job(job_name, runner_task("1"), image=image)
    )

    # When the agent gets its pod, Then the container waits with ErrImagePull, promptly (a kubelet's signal)
    pods = wait_for(
        admin_core.list_namespaced_pod,
        lambda items: any(_waiting_reason(pod) == "ErrImagePull" for pod in items),
        timeout_s=10.0,
        namespace=cluster_namespace,
        label_selector=job_pods_selector(job_name),
    )
    assert phase(pods[0]) == "Pending"


def test_active_deadline_fails_the_job_and_kills_its_pod(
    cluster_namespace: str, admin_batch: client.BatchV1Api, admin_core: client.CoreV1Api, job_name: str
) -> None:
    # Given a program that sleeps far longer than the Job's activeDeadlineSeconds
    task = runner_task("import time\ntime.sleep(120)", timeout_s=20)
    admin_batch.create_namespaced_job(cluster_namespace, hardened_job(job_name, task, active_deadline_s=2))

    # When the deadline passes
    finished = wait_job_finished(admin_batch, cluster_namespace, job_name, WAIT_S)

    # Then the Job fails with DeadlineExceeded and its pod is killed and removed
    condition = job_condition(finished, "Failed")
    assert condition is not None
    assert condition.reason == "DeadlineExceeded"
    wait_job_pods_gone(admin_core, cluster_namespace, job_name)


def test_ttl_after_finished_removes_job_and_pods(
    cluster_namespace: str, admin_batch: client.BatchV1Api, admin_core: client.CoreV1Api, job_name: str
) -> None:
    # Given a Job with ttlSecondsAfterFinished 0
    admin_batch.create_namespaced_job(
        cluster_namespace, hardened_job(job_name, runner_task("print(1)"), ttl_s=0)
    )

    # When it finishes, Then the TTL controller deletes it and the garbage collector its pods
    wait_gone(
        admin_batch.list_namespaced_job,
        WAIT_S,
        namespace=cluster_namespace,
        field_selector=f"metadata.name={job_name}",
    )
    wait_job_pods_gone(admin_core, cluster_namespace, job_name)


def test_privileged_pod_is_rejected_by_pod_security(
    cluster_namespace: str, admin_core: client.CoreV1Api
) -> None:
    # Given a privileged pod (even the admin may not run it in a `restricted` namespace)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"privileged-{uuid.uuid4().hex[:8]}"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="c", image=RUNNER_IMAGE, security_context=client.V1SecurityContext(privileged=True)
                )
            ]
        ),
    )

    # When it is created, Then PodSecurity admission refuses it
    with pytest.raises(client.ApiException) as raised:
        admin_core.create_namespaced_pod(cluster_namespace, pod)
    assert raised.value.status == 403
    assert "violates PodSecurity" in str(raised.value.body)


def _bare_pod() -> client.V1Pod:
    container = client.V1Container(name="c", image=RUNNER_IMAGE)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="bare"), spec=client.V1PodSpec(containers=[container])
    )


Attempt = Callable[[client.CoreV1Api, str], object]


@pytest.mark.parametrize(
    "attempt",
    [
        pytest.param(lambda core, ns: core.list_namespaced_secret(ns), id="list-secrets-in-runner-namespace"),
        pytest.param(
            lambda core, ns: core.read_namespaced_secret("any", ns), id="read-secret-in-runner-namespace"
        ),
        pytest.param(
            lambda core, _: core.list_namespaced_secret("kube-system"), id="list-secrets-in-kube-system"
        ),
        pytest.param(lambda core, ns: core.create_namespaced_pod(ns, _bare_pod()), id="create-bare-pod"),
        pytest.param(lambda core, ns: core.delete_collection_namespaced_pod(ns), id="delete-pods"),
    ],
)
def test_controller_identity_is_denied_beyond_its_role(
    cluster_namespace: str, controller_api_client: client.ApiClient, attempt: Attempt
) -> None:
    # Given the controller identity (group code-exec:controllers), When it steps outside its Role
    with pytest.raises(client.ApiException) as raised:
        attempt(client.CoreV1Api(controller_api_client), cluster_namespace)

    # Then RBAC forbids it
    assert raised.value.status == 403


def test_controller_identity_runs_a_job_end_to_end(
    cluster_namespace: str, controller_api_client: client.ApiClient, job_name: str
) -> None:
    # Given the controller identity, as the service talks to the cluster
    batch = client.BatchV1Api(controller_api_client)
    core = client.CoreV1Api(controller_api_client)

    # When it creates a Job, watches its pod, reads its log and deletes it
    started_s = time.monotonic()
    batch.create_namespaced_job(cluster_namespace, hardened_job(job_name, runner_task("print(6 * 7)")))
    pod = wait_pod_terminated(core, cluster_namespace, job_name, WAIT_S)
    report = read_report(core, cluster_namespace, pod)
    batch.delete_namespaced_job(job_name, cluster_namespace, propagation_policy="Background")
    print(f"controller round trip (create, watch, log, delete): {time.monotonic() - started_s:.2f} s")

    # Then every step was allowed and the result is the program's output
    assert b64decode(report.cases[0].stdout.data_b64) == b"42\n"
