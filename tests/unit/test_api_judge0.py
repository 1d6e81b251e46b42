"""The /judge0 routes through the real handler: shapes, status codes and refusals (no sandbox: wait=true runs
on a backend that answers a fixed report, wait=false only records executions in a SQLite store)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from judge0.base_types import Config, Language
from judge0.submission import Submission

from functions import wiring
from functions.core.executions import AsyncExecutionService
from functions.core.judge0.views import DEFAULT_FIELDS
from functions.core.languages import load_registry
from functions.core.models import ExecuteResponse
from functions.settings import Settings, get_settings
from tests.async_support import stored_executions
from tests.conformance import registry
from tests.conftest import FakeBackend, Invoke
from tests.report_factories import process, report

SUBMIT = "/judge0/submissions"
PRINT = {"source_code": "print(input())", "language_id": 71, "stdin": "hi"}
LANGUAGE_IDS = [judge0_id for judge0_id, _ in load_registry(get_settings().runners_dir).judge0_ids()]


@pytest.fixture
def executions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncExecutionService:
    service = wiring.build_executions(Settings(data_dir=tmp_path, async_max_queued=3))
    monkeypatch.setattr(wiring, "get_executions", lambda: service)
    return service


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- reads ---------------------------------------------------------------------------------------------


def test_about_answers_judge0_1_13_1(invoke: Invoke, fake_backend: FakeBackend) -> None:
    assert invoke("GET", "/judge0/about").json()["version"] == "1.13.1"


def test_config_info_parses_as_the_sdks_config(invoke: Invoke, fake_backend: FakeBackend) -> None:
    config = Config(**invoke("GET", "/judge0/config_info").json())
    settings = get_settings()
    assert (config.max_wall_time_limit, config.max_memory_limit) == (
        settings.max_timeout_s,
        settings.max_memory_limit_mb * 1024,
    )
    assert (config.enable_callbacks, config.max_number_of_runs, config.enable_network) == (False, 1, False)


def test_languages_list_every_judge0_id_of_the_registry(invoke: Invoke, fake_backend: FakeBackend) -> None:
    languages = [Language(**entry) for entry in invoke("GET", "/judge0/languages").json()]
    assert [language.id for language in languages] == LANGUAGE_IDS
    python = next(language for language in languages if language.id == 71)
    assert python.name == "Python (3.11.0)"  # the fake backend's toolchain version


def test_a_language_whose_toolchain_is_missing_is_archived_and_not_listed(
    invoke: Invoke, fake_backend: FakeBackend
) -> None:
    # Given a compiled language whose toolchain this server lacks, and another one it has
    missing = next(spec for spec in registry().all() if spec.compile and spec.judge0_ids)
    present = next(spec for spec in registry().all() if spec.judge0_ids and spec is not missing)
    fake_backend.unavailable.add(missing.name)

    # When Judge0 clients list the languages and ask for the missing one
    listed = {entry["id"] for entry in invoke("GET", "/judge0/languages").json()}
    detail = Language(**invoke("GET", f"/judge0/languages/{missing.judge0_ids[0]}").json())

    # Then it is left out of the list, and described as archived, with its commands
    assert missing.judge0_ids[0] not in listed
    assert present.judge0_ids[0] in listed
    assert (detail.is_archived, detail.source_file) == (True, missing.file_name)
    assert detail.compile_cmd is not None
    assert missing.compile is not None
    assert detail.compile_cmd.startswith(f"{missing.compile[0]} ")
    assert detail.run_cmd


@pytest.mark.parametrize("language_id", ["999", "abc", "-1"])
def test_an_unknown_language_is_404(invoke: Invoke, fake_backend: FakeBackend, language_id: str) -> None:
    response = invoke("GET", f"/judge0/languages/{language_id}")
    assert (response.status, response.json()["error"]) == (404, "not_found")


def test_statuses_are_judge0s_fourteen(invoke: Invoke, fake_backend: FakeBackend) -> None:
    statuses = invoke("GET", "/judge0/statuses").json()
    assert [status["id"] for status in statuses] == list(range(1, 15))
    assert statuses[10] == {"id": 11, "description": "Runtime Error (NZEC)"}


# --- wait=true -----------------------------------------------------------------------------------------


def test_wait_true_runs_and_answers_the_default_fields(invoke: Invoke, fake_backend: FakeBackend) -> None:
    response = invoke("POST", f"{SUBMIT}?wait=true", PRINT)
    body = response.json()
    assert response.status == 201
    assert set(body) == {"token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status"}
    assert body["status"] == {"id": 3, "description": "Accepted"}
    assert (body["stdout"], body["stderr"], body["memory"]) == ("hi\n", None, 1)
    assert uuid.UUID(body["token"]).version == 4
    (task,) = fake_backend.tasks
    assert base64.b64decode(task.cases[0].stdin_b64) == b"hi"


def test_empty_fields_answer_the_default_ones(invoke: Invoke, fake_backend: FakeBackend) -> None:
    assert list(invoke("POST", f"{SUBMIT}?wait=true&fields=", PRINT).json()) == list(DEFAULT_FIELDS)


def test_wait_true_with_base64_and_every_field(invoke: Invoke, fake_backend: FakeBackend) -> None:
    body = {"source_code": b64("print(1)"), "language_id": 92, "expected_output": b64("2")}
    answer = invoke("POST", f"{SUBMIT}?wait=true&base64_encoded=true&fields=*", body).json()
    assert answer["status"]["id"] == 4  # "hi\n" is not "2"
    assert base64.b64decode(answer["stdout"]) == b"hi\n"
    submission = Submission()
    submission.set_attributes(answer)  # the SDK reads it
    assert (submission.stdout, submission.exit_code, submission.time) == ("hi\n", 0, 0.01)
    assert submission.created_at is not None
    assert submission.finished_at is not None


def test_a_signal_reads_as_judge0s_runtime_error(invoke: Invoke, fake_backend: FakeBackend) -> None:
    fake_backend.report = report(process(exit_code=None, signal=11, stderr=b"boom"))
    answer = invoke(
        "POST", f"{SUBMIT}?wait=true&fields=status,exit_code,exit_signal,message,stderr", PRINT
    ).json()
    assert answer == {
        "status": {"id": 7, "description": "Runtime Error (SIGSEGV)"},
        "exit_code": 0,
        "exit_signal": 11,
        "message": "Caught fatal signal 11",
        "stderr": "boom",
    }


def test_a_memory_kill_says_so_in_the_message(invoke: Invoke, fake_backend: FakeBackend) -> None:
    fake_backend.report = report(process(exit_code=None, signal=9, oom_killed=True))
    answer = invoke("POST", f"{SUBMIT}?wait=true&fields=status_id,message", PRINT).json()
    assert answer == {"status_id": 12, "message": "Memory limit exceeded"}


def test_a_wait_true_run_is_recorded_like_an_execute_one(
    invoke: Invoke, fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded: list[ExecuteResponse] = []
    monkeypatch.setattr(wiring, "record_execution", recorded.append)
    invoke("POST", f"{SUBMIT}?wait=true", PRINT)
    assert [(response.language, response.verdict) for response in recorded] == [("python", "accepted")]


def test_stderr_into_stdout_reaches_the_run(invoke: Invoke, fake_backend: FakeBackend) -> None:
    invoke("POST", f"{SUBMIT}?wait=true", {**PRINT, "redirect_stderr_to_stdout": True})
    assert fake_backend.tasks[0].run.merge_stderr is True


# --- refusals ------------------------------------------------------------------------------------------

REFUSED: dict[str, tuple[str, dict[str, Any], dict[str, list[str]]]] = {
    "missing-language": (SUBMIT, {"source_code": "x"}, {"language_id": ["can't be blank"]}),
    "unknown-field": (SUBMIT, {**PRINT, "colour": 1}, {"colour": ["unknown field"]}),
    "unknown-language": (SUBMIT, {**PRINT, "language_id": 4}, {"language_id": ["language with id 4 doesn't exist"]}),
    "callback": (SUBMIT, {**PRINT, "callback_url": "http://example.test/cb"}, {"callback_url": ["callbacks are not supported: poll GET /submissions/{token} instead"]}),
    "runs": (SUBMIT, {**PRINT, "number_of_runs": 2}, {"number_of_runs": ["only 1 is supported: each submission runs once"]}),
    "boolean-number": (SUBMIT, {**PRINT, "cpu_time_limit": True}, {"cpu_time_limit": ["input should be a number, not a boolean"]}),
    "memory-floor": (f"{SUBMIT}?wait=true", {**PRINT, "memory_limit": 2048}, {"memory_limit": ["memory_limit_mb 2 is outside 16..512"]}),
    "time-ceiling": (f"{SUBMIT}?wait=true", {**PRINT, "cpu_time_limit": 30}, {"cpu_time_limit": ["timeout 30 s is above the ceiling of 20 s"]}),
    "blank-code": (f"{SUBMIT}?wait=true", {**PRINT, "source_code": "  "}, {"source_code": ["code is empty"]}),
    "batch-item": (f"{SUBMIT}/batch", {"submissions": [PRINT, {**PRINT, "language_id": 4}]}, {"submissions[1].language_id": ["language with id 4 doesn't exist"]}),
    "empty-batch": (f"{SUBMIT}/batch", {"submissions": []}, {"submissions": ["list should have at least 1 item after validation, not 0"]}),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_submission_is_judge0s_422_and_starts_nothing(
    invoke: Invoke,
    fake_backend: FakeBackend,
    executions: AsyncExecutionService,
    tmp_path: Path,
    case: tuple[str, dict[str, Any], dict[str, list[str]]],
) -> None:
    path, body, problems = case
    response = invoke("POST", path, body)
    assert (response.status, response.json()) == (422, problems)
    assert fake_backend.tasks == []
    assert stored_executions(tmp_path) == 0


@pytest.mark.parametrize(
    "query",
    ["wait=yes", "base64_encoded=True", "fields=stdout,nope", "fields=stdout,%20token"],
    ids=["wait", "base64", "unknown-field", "space"],
)
def test_a_bad_query_is_a_400(invoke: Invoke, fake_backend: FakeBackend, query: str) -> None:
    response = invoke("POST", f"{SUBMIT}?wait=true&{query}", PRINT)
    assert (response.status, response.json()["error"]) == (400, "invalid_request")
    assert fake_backend.tasks == []


def test_a_wrong_method_is_405_with_allow(invoke: Invoke, fake_backend: FakeBackend) -> None:
    response = invoke("PUT", f"{SUBMIT}/batch")
    assert (response.status, response.header("allow")) == (405, "GET, POST")


# --- wait=false: tokens are executions -----------------------------------------------------------------


def test_a_token_is_an_execution_readable_and_cancellable(
    invoke: Invoke, executions: AsyncExecutionService
) -> None:
    created = invoke("POST", SUBMIT, PRINT)
    token = created.json()["token"]
    assert (created.status, list(created.json())) == (201, ["token"])
    # The token is the execution id in the UUID form: /executions knows it too
    assert invoke("GET", f"/executions/{uuid.UUID(token).hex}").json()["state"] == "RUNNING"
    running = invoke("GET", f"{SUBMIT}/{token}?fields=*").json()
    assert (running["status"]["id"], running["finished_at"], running["stdout"]) == (2, None, None)
    deleted = invoke("DELETE", f"{SUBMIT}/{token}?fields=status_id,message")
    assert deleted.status == 200
    assert deleted.json()["status_id"] == 13
    assert base64.b64decode(deleted.json()["message"]) == b"the submission was cancelled (DELETE)"


def test_a_batch_starts_every_submission_and_reads_back_in_order(
    invoke: Invoke, executions: AsyncExecutionService
) -> None:
    created = invoke("POST", f"{SUBMIT}/batch", {"submissions": [PRINT, PRINT]})
    tokens = [item["token"] for item in created.json()]
    unknown = str(uuid.uuid4())
    found = invoke("GET", f"{SUBMIT}/batch?tokens={tokens[0]},{unknown},{tokens[1]}&fields=token,status_id")
    assert created.status == 201
    assert found.json() == {
        "submissions": [{"token": tokens[0], "status_id": 2}, None, {"token": tokens[1], "status_id": 2}]
    }


def test_a_batch_beyond_the_queue_starts_nothing(
    invoke: Invoke, executions: AsyncExecutionService, tmp_path: Path
) -> None:
    # Given a store that keeps 3 unfinished executions / When a batch of 4 comes
    response = invoke("POST", f"{SUBMIT}/batch", {"submissions": [PRINT] * 4})
    # Then it is refused whole: the three it could start were cancelled again
    assert (response.status, response.json()["error"]) == (503, "capacity_exhausted")
    assert invoke("POST", SUBMIT, PRINT).status == 201


@pytest.mark.parametrize(
    "token", ["0" * 32, "not-a-token", str(uuid.uuid4())], ids=["zero", "malformed", "unknown"]
)
def test_an_unknown_token_is_404(invoke: Invoke, executions: AsyncExecutionService, token: str) -> None:
    assert invoke("GET", f"{SUBMIT}/{token}").status == 404
    assert invoke("DELETE", f"{SUBMIT}/{token}").status == 404


def test_openapi_documents_every_judge0_route_and_its_422(invoke: Invoke, fake_backend: FakeBackend) -> None:
    document = invoke("GET", "/openapi.json").json()
    judge0 = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if path.startswith("/judge0/")
    }
    assert judge0 == {
        ("/judge0/about", "get"), ("/judge0/config_info", "get"), ("/judge0/languages", "get"),
        ("/judge0/languages/{language_id}", "get"), ("/judge0/statuses", "get"), ("/judge0/submissions", "post"),
        ("/judge0/submissions/batch", "post"), ("/judge0/submissions/batch", "get"),
        ("/judge0/submissions/{token}", "get"), ("/judge0/submissions/{token}", "delete"),
    }  # fmt: skip
    create = document["paths"]["/judge0/submissions"]["post"]
    assert "FieldErrors" in json.dumps(create["responses"]["422"])
    properties = document["components"]["schemas"]["SubmissionRequest"]["properties"]
    assert properties["language_id"]["enum"] == LANGUAGE_IDS
    # What a client may send is what is accepted: an unsupported field only its harmless values
    assert properties["enable_network"]["anyOf"] == [{"enum": [False]}, {"type": "null"}]
    assert properties["stack_limit"]["anyOf"] == [{"type": "null"}]
    memory = properties["memory_limit"]["anyOf"][0]
    assert (memory["exclusiveMinimum"], memory["maximum"]) == (15 * 1024, 512 * 1024)
    language = document["paths"]["/judge0/languages/{language_id}"]["get"]["parameters"][0]["schema"]
    assert language["enum"] == [str(judge0_id) for judge0_id in LANGUAGE_IDS]
