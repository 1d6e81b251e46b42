"""The official Judge0 SDK against /judge0 served on the Kubernetes backend, on the real control plane.

What `make run` with `EXEC_BACKEND=kubernetes` serves: the real handler (here in this process, behind the
local HTTP server, so the backend under test can be swapped in), `wait=true` as one Job through the
synchronous service, `wait=false` and batches as executions the dispatcher runs, each one Job. A subset of
the local suite (tests/integration/test_judge0_sdk.py): every language once, and the statuses of the
programs that make them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from judge0 import Client
from judge0.base_types import Status

from functions import wiring
from functions.api.handler import lambda_handler
from functions.core.languages import TEST_PROGRAM_OUTPUT, load_registry
from functions.devserver.server import LocalApiServer
from functions.settings import get_settings
from tests.cluster.test_kubernetes_backend_support import Deployment, deployment, k8s_settings, nothing_left
from tests.http_support import http_call
from tests.judge0_support import (
    BEHAVIOURS,
    PYTHON,
    check_sdk_reads,
    hello_world,
    one_id_per_language,
    run_all,
    sdk_client,
)

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("nothing_left")]
__all__ = ["deployment", "nothing_left"]  # fixtures, re-exported for pytest

RUNNERS = get_settings().runners_dir
# Every status family: the run's output, a judged answer, the compiler, a signal, an exit status.
SUBSET = ("stdin", "accepted", "wrong-answer", "compile-error", "segfault", "non-zero-exit")


@pytest.fixture
def served(deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """/judge0 over HTTP, on the cluster's backend: runs, executions (SQLite + dispatcher) and the server."""
    backend = deployment.backends[-1]
    tmp_path.chmod(0o711)
    settings = k8s_settings(deployment.cluster, deployment.namespace, data_dir=tmp_path, async_poll_max_s=1.0)
    executions = wiring.build_executions(settings)
    monkeypatch.setattr(wiring, "get_executions", lambda: executions)
    dispatcher = wiring.build_dispatcher(settings, wiring.build_workflow(settings, backend))
    server = LocalApiServer(("127.0.0.1", 0), handler=lambda_handler, queue_wait_s=30)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    dispatcher.start()
    thread.start()
    try:
        yield f"{server.url}/judge0"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        dispatcher.stop()


@pytest.fixture
def client(served: str) -> Client:
    return sdk_client(served)


def test_judge0_on_kubernetes_runs_every_language_and_reports_each_status(client: Client) -> None:
    # Given one id of every language and the programs of each status family, submitted together by the SDK
    ids = one_id_per_language(RUNNERS)
    behaviours = [behaviour for behaviour in BEHAVIOURS if behaviour.name in SUBSET]
    check_sdk_reads(client, [judge0_id for judge0_id, _language in load_registry(RUNNERS).judge0_ids()])
    submissions = [hello_world(RUNNERS, judge0_id) for judge0_id in ids.values()]
    # When judge0.run runs them (each one Job) and polls them to their end
    results = run_all(client, submissions + [behaviour.submission() for behaviour in behaviours])
    hellos, judged = results[: len(ids)], results[len(ids) :]
    # Then every language printed its hello world, and each program got Judge0's status for it
    failed = {
        name: (str(result.status), result.stdout, result.stderr, result.compile_output)
        for name, result in zip(ids, hellos, strict=True)
        if result.status != Status.ACCEPTED or result.stdout != TEST_PROGRAM_OUTPUT
    }
    assert failed == {}
    for behaviour, result in zip(behaviours, judged, strict=True):
        behaviour.check(result)


def test_wait_true_is_one_job_answered_at_once(served: str) -> None:
    body = {"source_code": "print(input())", "language_id": PYTHON, "stdin": "hi"}
    response = http_call(served.removesuffix("/judge0"), "POST", "/judge0/submissions?wait=true", body)
    assert response.status == 201, response.body[:500]
    assert (response.json()["status"]["id"], response.json()["stdout"]) == (3, "hi\n")
