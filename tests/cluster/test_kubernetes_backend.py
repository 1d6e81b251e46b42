"""The execution contract over the Kubernetes backend, through the Lambda handler, on the real control plane.

`test_contract` runs the shared table of tests/conformance.py, which the local backend's suite
(tests/integration/test_http_contract.py) runs too: the same request gives the same answer whichever
backend runs it. Every run here is one Job created by `KubernetesBackend` as the controller group in the
PSA-`restricted` runner-dev namespace, scheduled by the real scheduler, run by the node agent in the local
sandbox, its report read back through `pods/log`.
After every test no Job or pod of ours is left.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from functions.backends.kubernetes.job_builder import JobTemplate
from functions.backends.kubernetes.jobs import JobOperations, RunState
from functions.backends.kubernetes.retry import RetryPolicy
from functions.core.errors import NotFoundError
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.protocol import RunnerTask, b64decode
from functions.core.spec import prepare_run
from functions.settings import Settings
from functions.wiring import sync_policy
from tests.cluster.manifests import TEST_IMAGE_REGISTRY
from tests.cluster.test_kubernetes_backend_support import Deployment, deployment, nothing_left
from tests.cluster.waits import job_condition, wait_job_finished, wait_pod_terminated
from tests.conformance import ContractCase, conformance_cases
from tests.conftest import Invoke

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("deployment", "nothing_left")]
__all__ = ["deployment", "nothing_left"]  # fixtures, re-exported for pytest


def post_execute(invoke: Invoke, request: dict[str, Any]) -> dict[str, Any]:
    response = invoke("POST", "/execute", request)
    assert response.status == 200, response.body[:500]
    body: dict[str, Any] = response.json()
    return body


def execute(invoke: Invoke, language: str, code: str, **fields: Any) -> dict[str, Any]:
    return post_execute(invoke, {"language": language, "code": code, "encoding": "text", **fields})


def test_health_names_the_kubernetes_backend(invoke: Invoke) -> None:
    response = invoke("GET", "/health")
    assert (response.status, response.json()) == (200, {"status": "healthy", "backend": "kubernetes"})


@pytest.mark.parametrize("case", conformance_cases(), ids=lambda case: case.id)
def test_contract(invoke: Invoke, case: ContractCase) -> None:
    # Given one program of the shared contract table (the local backend's suite runs the very same table)
    # When it runs as a Job, through the handler
    body = post_execute(invoke, case.request())
    # Then the response holds what the contract says (and `nothing_left` proves the Job was deleted)
    case.check(body)


def test_large_stdin_travels_in_several_env_chunks(invoke: Invoke) -> None:
    # Given stdin larger than one 96 KiB env chunk (after two rounds of base64)
    stdin = "".join(f"{index:07d}\n" for index in range(40_000))  # 320 KB
    # When echoed by a Job
    body = execute(invoke, "python", "import sys\nprint(len(sys.stdin.read()))", stdin=stdin)
    # Then the program saw every byte
    assert (body["verdict"], body["stdout"]) == ("accepted", f"{len(stdin)}\n")


def test_budget_exhausted_is_504_with_the_execution_id_and_the_job_deleted(
    invoke: Invoke, deployment: Deployment
) -> None:
    # Given a synchronous budget shorter than the program's own time limit
    deployment.build(sync_budget_s=2.0)
    # When a program sleeps past the budget
    response = invoke(
        "POST",
        "/execute",
        {"language": "python", "code": "import time\ntime.sleep(30)", "encoding": "text", "timeout": 20},
    )
    # Then the caller gets 504 with the execution id (and `nothing_left` proves the Job was deleted)
    assert response.status == 504, response.body[:500]
    assert response.json()["execution_id"]


# --- the operations the Step Functions workflow calls: submit, status, result, cancel -----------------------


def _task(code: str, **fields: Any) -> RunnerTask:
    settings = Settings()
    request = ExecuteRequest(language="python", code=code, encoding="text", **fields)
    return prepare_run(request, load_registry(settings.runners_dir), sync_policy(settings)).task


def test_submit_status_result_cancel(
    deployment: Deployment, cluster_namespace: str, admin_api_client: client.ApiClient
) -> None:
    jobs = deployment.backends[-1].jobs
    # Given a submitted run that takes a moment
    name = jobs.submit(_task('import time\ntime.sleep(1)\nprint("done")'))
    # Then, while it runs, it is not finished and has no result
    assert jobs.status(name).state in {RunState.PENDING, RunState.RUNNING}
    assert jobs.result(name) is None
    # When its pod has ended
    wait_pod_terminated(client.CoreV1Api(admin_api_client), cluster_namespace, name, timeout_s=60)
    # Then it is finished and the result, from the Job alone, is the runner's evidence
    assert jobs.status(name).state is RunState.FINISHED
    report = jobs.result(name)
    assert report is not None
    assert [(case.exit_code, b64decode(case.stdout.data_b64)) for case in report.cases] == [(0, b"done\n")]
    # And cancel deletes it, twice without complaint
    jobs.cancel(name)
    jobs.cancel(name)
    with pytest.raises(NotFoundError):
        jobs.status(name)


def test_job_deadline_is_time_limit_exceeded(
    deployment: Deployment, cluster_namespace: str, admin_api_client: client.ApiClient
) -> None:
    # Given a Job whose own deadline (its run time 1 s, no grace) is shorter than the program's sleep, the
    # run's budget (1 s) cut so the runner itself would stop it only at the same moment
    api_client = deployment.backends[-1].jobs.api_client
    jobs = JobOperations(
        lambda: api_client,
        JobTemplate(namespace=cluster_namespace, image_registry=TEST_IMAGE_REGISTRY, deadline_grace_s=0),
        RetryPolicy(),
    )
    task = _task("import time\ntime.sleep(60)", timeout=20)
    task = task.model_copy(update={"limits": task.limits.model_copy(update={"total_budget_s": 1})})
    name = jobs.submit(task)
    # When the Job controller fails it for its deadline
    failed = wait_job_finished(client.BatchV1Api(admin_api_client), cluster_namespace, name, timeout_s=60)
    assert job_condition(failed, "Failed") is not None
    # Then its result, from the Job alone, says the case was killed at its deadline
    report = jobs.result(name)
    assert report is not None
    assert [(case.timed_out, case.signal) for case in report.cases] == [(True, 9)]
    jobs.cancel(name)
