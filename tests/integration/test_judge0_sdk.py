"""The official Judge0 Python SDK (PyPI `judge0`, unmodified) against /judge0 of the server `make run` starts:
a Judge0 user changes the URL and nothing else. Runs are real (the local sandbox); `wait=false` submissions
are executions run by the server's dispatcher."""

from __future__ import annotations

import uuid

import judge0
import pytest
from judge0 import Client, Submission
from judge0.base_types import Status

from functions.core.languages import load_registry
from functions.settings import get_settings
from tests.conftest import RunningServer
from tests.http_support import http_call
from tests.judge0_support import (
    BEHAVIOURS,
    PYTHON,
    Behaviour,
    check_sdk_reads,
    hello_world,
    run_all,
    sdk_client,
)

pytestmark = [pytest.mark.sandbox]

RUNNERS = get_settings().runners_dir
JUDGE0_IDS = [judge0_id for judge0_id, _language in load_registry(RUNNERS).judge0_ids()]


@pytest.fixture(scope="module")
def client(local_server: RunningServer) -> Client:
    return sdk_client(f"{local_server.url}/judge0")


def test_the_sdk_reads_languages_statuses_and_config(client: Client) -> None:
    # Every toolchain is installed here: every id of the registry is listed
    check_sdk_reads(client, JUDGE0_IDS)


def test_every_language_id_runs_its_hello_world(client: Client) -> None:
    # Given each id's language folder hello world, judged against its output / When judge0.run runs them all
    results = run_all(client, [hello_world(RUNNERS, judge0_id) for judge0_id in JUDGE0_IDS])
    # Then every id answered Accepted with the output
    failed = {
        judge0_id: (str(result.status), result.stdout, result.stderr, result.compile_output)
        for judge0_id, result in zip(JUDGE0_IDS, results, strict=True)
        if result.status != Status.ACCEPTED or result.stdout != "Hello, World!\n"
    }
    assert failed == {}


@pytest.fixture(scope="module")
def judged(client: Client) -> dict[str, Submission]:
    """Every behaviour's program, submitted together through judge0.run (one batch) and polled to its end."""
    results = run_all(client, [behaviour.submission() for behaviour in BEHAVIOURS])
    return {behaviour.name: result for behaviour, result in zip(BEHAVIOURS, results, strict=True)}


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda behaviour: behaviour.name)
def test_judge0_reports_what_the_program_did(judged: dict[str, Submission], behaviour: Behaviour) -> None:
    behaviour.check(judged[behaviour.name])


def test_an_async_submission_is_polled_to_its_result_and_its_token_is_an_execution(
    client: Client, local_server: RunningServer
) -> None:
    # Given a submission created without waiting: only its token comes back
    submission = judge0.async_run(client=client, source_code="print(6 * 7)", language=PYTHON)
    assert isinstance(submission, Submission)
    assert (submission.token is not None, submission.status) == (True, None)
    # When the SDK polls it
    judge0.wait(client=client, submissions=submission)
    # Then it finished, with Judge0's fields
    assert (submission.status, submission.stdout, submission.exit_code) == (Status.ACCEPTED, "42\n", 0)
    assert submission.created_at is not None
    assert submission.finished_at is not None
    assert submission.finished_at >= submission.created_at
    # And the token names the same execution /executions reads
    execution = http_call(local_server.url, "GET", f"/executions/{uuid.UUID(str(submission.token)).hex}")
    assert execution.json()["state"] == "SUCCEEDED"


def test_a_batch_of_five(client: Client) -> None:
    # Given five submissions created with one POST /submissions/batch
    submissions = [Submission(source_code=f"print({n} * {n})", language=PYTHON) for n in range(5)]
    client.create_submissions(submissions)
    # When they are polled together (GET /submissions/batch?tokens=...)
    judge0.wait(client=client, submissions=submissions)
    # Then each has its own result, in order
    assert [(submission.status, submission.stdout) for submission in submissions] == [
        (Status.ACCEPTED, f"{n * n}\n") for n in range(5)
    ]


def test_wait_true_answers_the_finished_submission(local_server: RunningServer) -> None:
    body = {"source_code": "print(input())", "language_id": PYTHON, "stdin": "hi"}
    response = http_call(local_server.url, "POST", "/judge0/submissions?wait=true", body)
    answer = response.json()
    assert response.status == 201
    assert (answer["status"], answer["stdout"], answer["stderr"]) == (
        {"id": 3, "description": "Accepted"},
        "hi\n",
        None,
    )
    assert float(answer["time"]) >= 0
    assert answer["memory"] > 0


def test_delete_cancels_a_running_submission(local_server: RunningServer) -> None:
    body = {"source_code": "import time\ntime.sleep(60)", "language_id": PYTHON, "wall_time_limit": 20}
    token = http_call(local_server.url, "POST", "/judge0/submissions", body).json()["token"]
    deleted = http_call(
        local_server.url, "DELETE", f"/judge0/submissions/{token}?fields=status_id,finished_at"
    )
    assert deleted.status == 200
    assert deleted.json()["status_id"] == 13
    assert deleted.json()["finished_at"] is not None
    after = http_call(local_server.url, "GET", f"/judge0/submissions/{token}?fields=status_id").json()
    assert after == {"status_id": 13}
