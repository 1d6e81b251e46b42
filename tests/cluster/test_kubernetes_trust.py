"""The pod's trust boundary, attacked through the real control plane and the node agent.

Every request goes through the Lambda handler and `KubernetesBackend` into a Job of the PSA-`restricted`
namespace; the node agent runs each container as a container runtime would: the runner as PID 1 of its own
PID namespace, the program as its child with the same uid, no capabilities, and the `RuntimeDefault`
seccomp profile — which allows ptrace, process_vm_readv and pidfd_getfd, so what is refused below is
refused by the runner's own protections (PID 1, non-dumpable), not by a filter. The programs are in
trust_programs.py.
"""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from typing import Any

import pytest
from kubernetes import client

from functions.backends.kubernetes.constants import (
    JUDGING_PLAN_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RUNNER_CONTAINER,
)
from functions.backends.kubernetes.task_env import decode_task_env
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.spec import prepare_run
from functions.settings import Settings
from functions.wiring import sync_policy
from tests.cluster.harness import ClusterInfo, node_state_dir
from tests.cluster.test_kubernetes_backend_support import Deployment, deployment, nothing_left
from tests.cluster.trust_programs import (
    MANY_CHILDREN,
    PYTHON_ORPHAN_CPU,
    REACH_THE_RUNNER,
    READ_THE_RUNNER,
    STOP_THE_RUNNER,
)
from tests.cluster.waits import wait_for
from tests.conformance import program, registry
from tests.conftest import Invoke

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("deployment", "nothing_left")]
__all__ = ["deployment", "nothing_left"]  # fixtures, re-exported for pytest

# A run whose supervisor is stopped is answered within its timeout + 2 s (on top of what
# an ordinary run of the same language costs, measured in the same test).
ANSWER_SLACK_S = 2.0
SECRET = "expected-output-the-program-must-never-see"


def execute(invoke: Invoke, language: str, code: str, **fields: Any) -> dict[str, Any]:
    response = invoke("POST", "/execute", {"language": language, "code": code, "encoding": "text", **fields})
    assert response.status == 200, response.body[:500]
    body: dict[str, Any] = response.json()
    return body


def timed_execute(invoke: Invoke, language: str, code: str, **fields: Any) -> tuple[dict[str, Any], float]:
    started_s = time.monotonic()
    body = execute(invoke, language, code, **fields)
    return body, time.monotonic() - started_s


@pytest.mark.parametrize("language", sorted(REACH_THE_RUNNER))
def test_the_program_can_neither_reach_nor_impersonate_the_runner(invoke: Invoke, language: str) -> None:
    # Given a program that takes the runner's report pipe (pidfd_getfd), traces it, writes to its stdout,
    # stops and kills it, each to put a forged report in place of the runner's
    # When it runs against a test case it cannot pass honestly
    body = execute(invoke, language, REACH_THE_RUNNER[language], test_cases=[{"expected_output": "42"}])
    lines = set(body["stdout"].splitlines())
    # Then every reach is refused, the signals change nothing (the program goes on, the runner reports),
    # and the answer is the program's own honest verdict, with the real toolchain version
    assert {"pidfd_getfd denied", "ptrace denied", "write-fd-1 denied", "still here"} <= lines, body["stdout"]
    if language == "python":
        assert "parent 1" in lines  # the runner is its parent and PID 1
    if language == "java":
        assert "java-write-fd-1 denied" in lines
    if language == "javascript":
        assert "node-write-fd-1 denied" in lines
    assert body["verdict"] == "wrong_answer"
    assert body["language_version"] not in {"", "forged"}


def test_expected_outputs_never_enter_the_pod(
    deployment: Deployment, cluster_namespace: str, admin_api_client: client.ApiClient
) -> None:
    # Given a compiled program's run with an expected output, submitted with its judging plan
    settings = Settings()
    request = ExecuteRequest(
        language="cpp",
        code=program(registry().get("cpp"), "hello"),
        encoding="text",
        test_cases=[{"stdin": "1", "expected_output": SECRET}],
    )
    prepared = prepare_run(request, load_registry(settings.runners_dir), sync_policy(settings))
    jobs = deployment.backends[-1].jobs
    name = jobs.submit(prepared.task, plan=prepared.plan)
    try:
        # When its pod exists
        core = client.CoreV1Api(admin_api_client)
        pods = wait_for(
            core.list_namespaced_pod,
            bool,
            timeout_s=30,
            namespace=cluster_namespace,
            label_selector=f"batch.kubernetes.io/job-name={name}",
        )
        pod = admin_api_client.sanitize_for_serialization(pods[0])  # type: ignore[no-untyped-call]
        # Then neither the pod nor the task of any of its containers holds the expected output, nor its digest
        tasks = [
            decode_task_env({var["name"]: var.get("value", "") for var in container["env"]}).model_dump_json()
            for container in [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]
        ]
        assert len(tasks) == 2
        encoded = base64.b64encode(SECRET.encode()).decode()
        digest = prepared.plan.expected_sha256[0]
        assert digest is not None
        for text in [str(pod), *tasks]:
            assert SECRET not in text
            assert encoded not in text
            assert digest not in text
        # And the plan (the digest) is on the Job only, for whoever judges the run from the Job
        assert jobs.judging_plan(name) == prepared.plan
        assert JUDGING_PLAN_ANNOTATION not in (pods[0].metadata.annotations or {})
    finally:
        jobs.cancel(name)


@pytest.mark.parametrize("language", sorted(READ_THE_RUNNER))
def test_the_program_cannot_read_the_runner_environment_or_memory(invoke: Invoke, language: str) -> None:
    # Given a program that reads the runner's environment (the task), its memory map and its memory
    # When it runs with an expected output it would like to learn
    body = execute(invoke, language, READ_THE_RUNNER[language], test_cases=[{"expected_output": SECRET}])
    lines = set(body["stdout"].splitlines())
    # Then each read is refused, and nothing of the expected output is anywhere it could see
    assert {"environ denied", "maps denied", "mem denied"} <= lines, body["stdout"]
    assert SECRET not in body["stdout"]
    if language == "python":
        assert "own-env HOME LANG LC_ALL PATH PYTHONIOENCODING TMPDIR" in lines
    assert body["verdict"] == "wrong_answer"


@pytest.mark.parametrize("language", sorted(STOP_THE_RUNNER))
def test_the_program_cannot_stop_the_runner(invoke: Invoke, language: str) -> None:
    # Given what an ordinary run of the language costs here
    _, baseline_s = timed_execute(invoke, language, program(registry().get(language), "hello"))
    # When a program SIGSTOPs the runner (PID 1, its parent) and then never ends, with a 1 s time limit
    body, elapsed_s = timed_execute(invoke, language, STOP_THE_RUNNER[language], timeout=1)
    print(
        f"{language}: stopped runner answered after {elapsed_s:.2f} s (an ordinary run: {baseline_s:.2f} s)"
    )
    # Then the runner itself killed it at its limit: the answer is its report (with what the program
    # printed), promptly, and a time_limit_exceeded
    assert body["verdict"] == "time_limit_exceeded"
    assert "sent SIGSTOP" in body["stdout"]
    assert elapsed_s <= baseline_s + 1 + ANSWER_SLACK_S


def _runner_pid(cluster: ClusterInfo, core: client.CoreV1Api, namespace: str) -> int:
    """The host pid of the runner container of the one run in flight, once it is running."""

    def runner_running(pods: list[client.V1Pod]) -> bool:
        return any(
            status.name == RUNNER_CONTAINER and status.state is not None and status.state.running is not None
            for pod in pods
            for status in (pod.status.container_statuses if pod.status else None) or []
        )

    pods = wait_for(
        core.list_namespaced_pod,
        runner_running,
        timeout_s=30,
        namespace=namespace,
        label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}",
    )
    pid_file = (
        node_state_dir(cluster.state_dir) / "pids" / namespace / pods[0].metadata.name / RUNNER_CONTAINER
    )
    return int(pid_file.read_text(encoding="ascii"))


def test_a_frozen_runner_is_answered_as_a_timeout_not_a_504(
    invoke: Invoke, cluster: ClusterInfo, cluster_namespace: str, admin_api_client: client.ApiClient
) -> None:
    # Given what an ordinary run costs here
    _, baseline_s = timed_execute(invoke, "python", program(registry().get("python"), "hello"))
    # When the runner is frozen from outside (SIGSTOP from the host, as a stalled node would: the program
    # itself cannot, see above) while its program sleeps past its 1 s limit
    answers: list[tuple[dict[str, Any], float]] = []
    request = threading.Thread(
        target=lambda: answers.append(
            timed_execute(invoke, "python", "import time\ntime.sleep(30)", timeout=1)
        )
    )
    request.start()
    runner_pid = _runner_pid(cluster, client.CoreV1Api(admin_api_client), cluster_namespace)
    os.kill(runner_pid, signal.SIGSTOP)
    request.join(timeout=60)
    # Then the service stops waiting at the run's own deadline and answers time_limit_exceeded (no report
    # came: nothing the program printed), within the limit + 2 s, not a 504 after the whole budget
    ((body, elapsed_s),) = answers
    print(f"frozen runner answered after {elapsed_s:.2f} s (an ordinary run: {baseline_s:.2f} s)")
    assert (body["verdict"], body["stdout"]) == ("time_limit_exceeded", "")
    assert elapsed_s <= baseline_s + 1 + ANSWER_SLACK_S


@pytest.mark.parametrize("language", sorted(MANY_CHILDREN))
def test_the_memory_limit_covers_every_process_of_the_program(invoke: Invoke, language: str) -> None:
    # Given 12 children of the program, each far below the 16 MB limit's per-process address space but
    # together hundreds of MB
    body = execute(invoke, language, MANY_CHILDREN[language], memory_limit_mb=16, timeout=10)
    # Then the container's limit (the run step's memory + the runner's) stops them: memory_limit_exceeded
    assert body["verdict"] == "memory_limit_exceeded", body


def test_cpu_time_counts_processes_the_program_never_reaped(invoke: Invoke) -> None:
    # Given a program whose orphaned grandchild burns a second of CPU while the program itself sleeps
    body = execute(invoke, "python", PYTHON_ORPHAN_CPU, timeout=10)
    # Then that second is in the run's CPU time (the runner, PID 1, reaped the orphan)
    assert body["verdict"] == "accepted"
    assert body["cpu_time"] >= 0.9


def test_cases_share_no_files(invoke: Invoke) -> None:
    # Given a program that reports, then leaves, a file in its working directory and in its own box
    code = (
        "import os\n"
        "print(sorted(os.listdir('.')), sorted(os.listdir('/box')), sorted(os.listdir('/dev/shm')))\n"
        "for path in ('left-behind', '/box/left-behind', '/dev/shm/left-behind'):\n"
        "    open(path, 'w').write('x')\n"
    )
    # When it runs for two test cases
    body = execute(invoke, "python", code, test_cases=[{}, {}])
    # Then the second case starts from the same empty /tmp and /dev/shm, and the same box, as the first
    outputs = [result["stdout"] for result in body["test_results"]]
    assert outputs == ["[] ['main.py'] []\n"] * 2
