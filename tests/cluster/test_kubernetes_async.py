"""The asynchronous path on the Kubernetes backend, on the real control plane.

What `make run` with `EXEC_BACKEND=kubernetes` does for /executions: the executions live in SQLite, the
dispatcher runs the workflow's steps (Submit, Poll, Cleanup) over the Kubernetes run port, and every run is
one Job. A run far longer than the synchronous budget completes; a cancelled one leaves no Job and no pod.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from functions import wiring
from functions.core.executions import AsyncExecutionService, ExecutionState, ExecutionView
from functions.core.models import ExecuteRequest
from functions.sqlite_executions.dispatcher import Dispatcher
from tests.async_support import wait_for
from tests.cluster.test_kubernetes_backend_support import (
    OURS,
    Deployment,
    deployment,
    k8s_settings,
    nothing_left,
)

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("nothing_left")]
__all__ = ["deployment", "nothing_left"]  # fixtures, re-exported for pytest

LONG_RUN_S = 40
# Prints its argument after sleeping that long (the program's own clock: nothing here waits on it).
SLEEPER = "import sys, time\ntime.sleep(float(sys.argv[1]))\nprint('slept', sys.argv[1])\n"


@pytest.fixture
def executions(deployment: Deployment, tmp_path: Path) -> Iterator[AsyncExecutionService]:
    """The local asynchronous engine (SQLite + dispatcher) on the cluster's Kubernetes backend."""
    backend = deployment.build()
    tmp_path.chmod(0o711)
    settings = k8s_settings(deployment.cluster, deployment.namespace, data_dir=tmp_path, async_poll_max_s=1.0)
    workflow = wiring.build_workflow(settings, backend)
    dispatcher: Dispatcher = wiring.build_dispatcher(settings, workflow)
    dispatcher.start()
    try:
        yield wiring.build_executions(settings)
    finally:
        dispatcher.stop()


def _start(executions: AsyncExecutionService, seconds: float, timeout_s: float) -> ExecutionView:
    request = ExecuteRequest(
        language="python", code=SLEEPER, encoding="text", args=[str(seconds)], timeout=timeout_s
    )
    return executions.start(request, idempotency_key=None, caller="cluster-test")


@pytest.mark.slow
def test_a_run_longer_than_the_synchronous_budget_completes(executions: AsyncExecutionService) -> None:
    # Given a 40 s program with a 60 s limit, beyond the 28 s a synchronous request may take
    started = _start(executions, LONG_RUN_S, timeout_s=60)
    # When the execution is followed to its end
    ended = wait_for(
        lambda: executions.describe(started.execution_id),
        lambda view: view.state is not ExecutionState.RUNNING,
        timeout_s=LONG_RUN_S + 60,
    )
    # Then it SUCCEEDED with the /execute response of the run (the Job is gone: `nothing_left`)
    assert ended.state is ExecutionState.SUCCEEDED, ended
    assert ended.result is not None
    assert (ended.result.verdict, ended.result.stdout) == ("accepted", f"slept {LONG_RUN_S}\n")
    assert ended.result.execution_time >= LONG_RUN_S


def test_cancelling_a_running_execution_leaves_no_job_and_no_pod(
    executions: AsyncExecutionService, deployment: Deployment, controller_api_client: client.ApiClient
) -> None:
    # Given an execution whose program is running in its pod
    started = _start(executions, 300, timeout_s=600)
    pods = client.CoreV1Api(controller_api_client)
    wait_for(
        lambda: pods.list_namespaced_pod(deployment.namespace, label_selector=OURS).items,
        lambda items: any(pod.status is not None and pod.status.phase == "Running" for pod in items),
    )
    # When it is cancelled
    cancelled = executions.cancel(started.execution_id)
    # Then it is CANCELLED, and its Job and pod are gone (waited on here, checked again by `nothing_left`)
    assert cancelled.state is ExecutionState.CANCELLED
    jobs = client.BatchV1Api(controller_api_client)
    wait_for(
        lambda: jobs.list_namespaced_job(deployment.namespace, label_selector=OURS).items,
        lambda items: not items,
    )
    wait_for(
        lambda: pods.list_namespaced_pod(deployment.namespace, label_selector=OURS).items,
        lambda items: not items,
    )
    assert executions.describe(started.execution_id).state is ExecutionState.CANCELLED
