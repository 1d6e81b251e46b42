"""The routes through `lambda_handler` with a fake backend: response shapes, documentation, logs, metrics."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from functions import observability
from functions.api.handler import lambda_handler
from functions.core.protocol import b64decode
from functions.devserver.server import LocalLambdaContext
from tests.conformance import registry
from tests.conftest import EventFactory, FakeBackend, Invoke
from tests.report_factories import process, report

BASIC_BODY = {"language": "python", "code": base64.b64encode(b'print("Hello, World!")').decode()}
BASIC_FIELDS = {"status", "stdout", "stderr", "execution_time", "exit_code"}
NEW_FIELDS = {
    "verdict", "compile_output", "signal", "memory_kb", "cpu_time", "truncated",
    "execution_id", "language", "language_version",
}  # fmt: skip

Logs = Callable[[], list[dict[str, Any]]]


def test_execute_answers_the_basic_request_with_the_basic_fields_and_the_richer_ones(
    invoke: Invoke, fake_backend: FakeBackend
) -> None:
    # Given the README's example request
    # When it is posted
    response = invoke("POST", "/execute", BASIC_BODY)

    # Then 200 with every basic field and every richer one, from the backend's report
    body = response.json()
    assert response.status == 200
    assert set(body) >= BASIC_FIELDS | NEW_FIELDS
    assert (body["status"], body["stdout"], body["exit_code"]) == ("success", "hi\n", 0)
    assert (body["verdict"], body["language"], body["language_version"]) == ("accepted", "python", "9.9")
    # and the backend got the decoded source
    assert b64decode(fake_backend.tasks[0].source_b64) == b'print("Hello, World!")'


# Every alias of every folder, the odd ones upper-cased (names are case-insensitive).
ALIASES = {
    (alias.upper() if index % 2 else alias): spec.name
    for index, (alias, spec) in enumerate(
        (alias, spec) for spec in registry().all() for alias in spec.aliases
    )
}


@pytest.mark.parametrize(("alias", "canonical"), ALIASES.items(), ids=ALIASES.keys())
def test_aliases_resolve_to_the_canonical_language(
    alias: str, canonical: str, invoke: Invoke, fake_backend: FakeBackend
) -> None:
    response = invoke("POST", "/execute", {"language": alias, "encoding": "text", "code": "x"})

    assert response.status == 200
    assert response.json()["language"] == canonical
    assert fake_backend.tasks[0].language.name == canonical


@pytest.mark.parametrize(
    "content_type",
    ["APPLICATION/JSON", "Application/Json; charset=UTF-8"],
    ids=["upper-case", "mixed-with-charset"],
)
def test_the_json_media_type_is_case_insensitive(
    invoke: Invoke, fake_backend: FakeBackend, content_type: str
) -> None:
    # When a client spells the media type in another case (RFC 9110: it is case-insensitive)
    response = invoke(
        "POST",
        "/execute",
        {"language": "python", "encoding": "text", "code": "x"},
        headers={"Content-Type": content_type},
    )
    # Then the request is served like any other
    assert response.status == 200
    assert len(fake_backend.tasks) == 1


def test_text_encoding_takes_code_and_stdin_verbatim(invoke: Invoke, fake_backend: FakeBackend) -> None:
    invoke("POST", "/execute", {"language": "py", "encoding": "text", "code": "print(2)", "stdin": "é\n"})

    task = fake_backend.tasks[0]
    assert b64decode(task.source_b64) == b"print(2)"
    assert b64decode(task.cases[0].stdin_b64) == "é\n".encode()


def test_test_cases_come_back_per_case(invoke: Invoke, fake_backend: FakeBackend) -> None:
    # Given a backend that compiled once and ran two cases, the second printing a wrong answer
    fake_backend.report = report(
        process(stdout=b"2\n"),
        process(stdout=b"4\n"),
        compile_step=process(stdout=b"warning: x"),
        version="12",
    )
    cases = [{"stdin": "1", "expected_output": "2"}, {"stdin": "2", "expected_output": "5"}]

    # When the cases are posted
    response = invoke(
        "POST", "/execute", {"language": "cpp", "encoding": "text", "code": "x", "test_cases": cases}
    )

    # Then the top level has the first failing case's verdict, the compile output once, and one result per case
    body = response.json()
    assert (body["status"], body["verdict"], body["compile_output"]) == (
        "failed",
        "wrong_answer",
        "warning: x",
    )
    assert [result["verdict"] for result in body["test_results"]] == ["accepted", "wrong_answer"]
    assert len(fake_backend.tasks) == 1
    assert len(fake_backend.tasks[0].cases) == 2


def test_health_names_the_backend(invoke: Invoke, fake_backend: FakeBackend) -> None:
    response = invoke("GET", "/health")

    assert (response.status, response.json()) == (200, {"status": "healthy", "backend": "fake"})


def test_languages_lists_every_runner_folder(invoke: Invoke, fake_backend: FakeBackend) -> None:
    response = invoke("GET", "/languages")

    languages = {language["name"]: language for language in response.json()}
    assert response.status == 200
    assert {"python", "javascript", "cpp", "java"} <= set(languages)
    assert languages["cpp"]["compiled"] is True
    assert "node" in languages["javascript"]["aliases"]


def test_openapi_document_describes_the_api(invoke: Invoke, fake_backend: FakeBackend) -> None:
    response = invoke("GET", "/openapi.json")

    document = response.json()
    assert response.status == 200
    assert {"/execute", "/health", "/languages"} <= set(document["paths"])
    execute = document["paths"]["/execute"]["post"]
    assert {"200", "400", "413", "429", "503", "504"} <= set(execute["responses"])
    assert "ExecuteRequest" in json.dumps(execute["requestBody"])


def test_swagger_ui_works_offline(invoke: Invoke, fake_backend: FakeBackend) -> None:
    # When the Swagger UI page is fetched
    response = invoke("GET", "/swagger")

    # Then it is HTML with Swagger UI's script inlined: the page loads nothing from a CDN
    page = response.body.decode()
    assert response.status == 200
    assert (response.header("content-type") or "").startswith("text/html")
    assert "SwaggerUIBundle" in page
    assert "<script src=" not in page
    assert "/execute" in page


def test_logs_carry_the_api_gateway_request_id_as_correlation_id(
    invoke: Invoke, fake_backend: FakeBackend, api_event: Any, structured_logs: Logs
) -> None:
    # Given an event with a known API Gateway request id
    invoke("POST", "/execute", BASIC_BODY)

    # Then the execution's log line carries it, with the verdict and language
    finished = [record for record in structured_logs() if record["message"] == "execution finished"]
    assert len(finished) == 1
    record = finished[0]
    assert record["correlation_id"] == record["function_request_id"]  # the local server uses one id for both
    assert (record["language"], record["verdict"], record["service"]) == ("python", "accepted", "code-exec")


@pytest.fixture
def metrics_on() -> Iterator[None]:
    previous = observability.metrics_enabled()
    observability.set_metrics_enabled(True)
    yield
    observability.set_metrics_enabled(previous)


def _emf_documents(text: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    return [document for document in documents if "_aws" in document]


def test_each_execution_is_counted_by_language_and_verdict(
    invoke: Invoke, fake_backend: FakeBackend, metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # When one run finishes
    invoke("POST", "/execute", BASIC_BODY)

    # Then one EMF document counts it under its language and verdict
    documents = _emf_documents(capsys.readouterr().out)
    assert len(documents) == 1
    document = documents[0]
    metric_names = {metric["Name"] for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Executions", "ExecutionTime"} <= metric_names
    assert sorted(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == [
        "language",
        "service",
        "verdict",
    ]
    assert (document["language"], document["verdict"], document["Executions"]) == (
        "python",
        "accepted",
        [1.0],
    )


def test_refusals_are_counted_by_error_code(
    invoke: Invoke, fake_backend: FakeBackend, metrics_on: None, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke("POST", "/execute", {"language": "cobol", "code": "eA=="})

    documents = _emf_documents(capsys.readouterr().out)
    assert [(document["error"], document["Errors"]) for document in documents] == [
        ("unknown_language", [1.0])
    ]


def test_metrics_stay_quiet_when_disabled(
    invoke: Invoke, fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = observability.metrics_enabled()
    observability.set_metrics_enabled(False)
    try:
        invoke("POST", "/execute", BASIC_BODY)
    finally:
        observability.set_metrics_enabled(previous)

    assert _emf_documents(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("remaining_s", "expected_budget_s"),
    [(29.0, 27.0), (10.0, 8.0), (1.0, 0.0)],
    ids=["plenty-left-budget-capped-by-remaining", "little-left", "nothing-left"],
)
def test_run_budget_never_outlives_the_lambda(
    api_event: EventFactory, fake_backend: FakeBackend, remaining_s: float, expected_budget_s: float
) -> None:
    # Given an invocation with `remaining_s` of Lambda time left (sync budget 28 s, 2 s kept to answer)
    event = api_event("POST", "/execute", BASIC_BODY)
    context = LocalLambdaContext(request_id="budget", timeout_s=remaining_s)
    # When it runs
    assert lambda_handler(event, context)["statusCode"] == 200
    # Then the backend got at most the remaining time minus the margin, never more than the sync budget
    assert fake_backend.budgets_s[0] == pytest.approx(expected_budget_s, abs=0.05)
