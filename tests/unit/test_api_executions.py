"""/executions through `lambda_handler` on the local store (nothing runs them here: that is the dispatcher's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions import wiring
from functions.api.handler import lambda_handler
from functions.core.executions import AsyncExecutionService
from functions.devserver.server import LocalLambdaContext
from functions.settings import Settings
from tests.async_support import stored_executions
from tests.conftest import Invoke
from tests.http_support import from_proxy

BODY = {"language": "python", "code": "print(1)", "encoding": "text"}
EXECUTION_ID_PATTERN = r"^[0-9a-f]{32}$"


@pytest.fixture
def executions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncExecutionService:
    service = wiring.build_executions(Settings(data_dir=tmp_path, async_max_queued=2, async_poll_max_s=5))
    monkeypatch.setattr(wiring, "get_executions", lambda: service)
    return service


def test_post_answers_202_with_the_status_url_in_body_and_location(
    invoke: Invoke, executions: AsyncExecutionService
) -> None:
    # When an /execute body is posted to /executions
    response = invoke("POST", "/executions", BODY, headers={"Host": "api.example.com"})
    # Then 202, an id, and where to ask for it
    body = response.json()
    assert response.status == 202
    assert set(body) == {"execution_id", "status_url"}
    assert body["status_url"] == f"http://api.example.com/executions/{body['execution_id']}"
    assert response.header("location") == body["status_url"]
    # And GET there describes it
    described = invoke("GET", f"/executions/{body['execution_id']}")
    assert described.status == 200
    view = described.json()
    assert set(view) == {"execution_id", "state", "result", "error", "created_at", "finished_at"}
    assert (view["execution_id"], view["state"], view["result"]) == (body["execution_id"], "RUNNING", None)


def test_behind_api_gateway_the_status_url_carries_the_stage(
    invoke: Invoke, executions: AsyncExecutionService, api_event: Any
) -> None:
    # Given an event as API Gateway sends it on its execute-api host: the stage is in requestContext.path
    event = api_event("POST", "/executions", BODY, headers={"X-Forwarded-Proto": "https"})
    event["requestContext"]["domainName"] = "abc123.execute-api.eu-west-1.amazonaws.com"
    event["requestContext"]["path"] = "/dev/executions"
    response = from_proxy(lambda_handler(event, LocalLambdaContext(request_id="r")))
    url = response.json()["status_url"]
    assert url.startswith("https://abc123.execute-api.eu-west-1.amazonaws.com/dev/executions/")


def test_the_same_idempotency_key_answers_the_same_execution(
    invoke: Invoke, executions: AsyncExecutionService, tmp_path: Path
) -> None:
    first = invoke("POST", "/executions", BODY, headers={"Idempotency-Key": "order-42"})
    again = invoke("POST", "/executions", BODY, headers={"idempotency-key": "order-42"})
    other = invoke("POST", "/executions", BODY, headers={"Idempotency-Key": "order-43"})
    assert first.status == again.status == other.status == 202
    assert first.json() == again.json()
    assert other.json()["execution_id"] != first.json()["execution_id"]
    assert stored_executions(tmp_path) == 2


def test_a_key_reused_for_another_request_is_refused_with_422(
    invoke: Invoke, executions: AsyncExecutionService
) -> None:
    invoke("POST", "/executions", BODY, headers={"Idempotency-Key": "k"})
    response = invoke("POST", "/executions", {**BODY, "code": "print(2)"}, headers={"Idempotency-Key": "k"})
    assert response.status == 422
    assert response.json()["error"] == "idempotency_key_reused"


BAD_REQUESTS = {
    "unknown-language": ({**BODY, "language": "cobol"}, {}, 400, "unknown_language"),
    "timeout-above-900": ({**BODY, "timeout": 901}, {}, 400, "invalid_request"),
    "unknown-field": ({**BODY, "priority": 1}, {}, 400, "invalid_request"),
    "not-json": ("{", {}, 400, "invalid_json"),
    "key-too-long": (BODY, {"Idempotency-Key": "k" * 256}, 400, "invalid_request"),
    "code-too-large": ({**BODY, "code": "#" * 70_000}, {}, 413, "payload_too_large"),
    "above-state-input-limit": ({**BODY, "stdin": "x" * 300_000}, {}, 413, "payload_too_large"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_input_is_answered_at_post_and_starts_nothing(
    invoke: Invoke,
    executions: AsyncExecutionService,
    tmp_path: Path,
    case: tuple[Any, dict[str, str], int, str],
) -> None:
    body, headers, status, error = case
    response = invoke("POST", "/executions", body, headers=headers)
    assert (response.status, response.json()["error"]) == (status, error)
    assert stored_executions(tmp_path) == 0


def test_beyond_the_waiting_limit_post_answers_503_with_retry_after(
    invoke: Invoke, executions: AsyncExecutionService
) -> None:
    for _ in range(2):
        assert invoke("POST", "/executions", BODY).status == 202
    response = invoke("POST", "/executions", BODY)
    assert response.status == 503
    assert response.json()["error"] == "capacity_exhausted"
    assert response.header("retry-after") == "5"


@pytest.mark.parametrize(
    "execution_id", ["0" * 32, "not-an-id", "%2e%2e"], ids=["unknown", "malformed", "dots"]
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_unknown_execution_is_404(
    invoke: Invoke, executions: AsyncExecutionService, method: str, execution_id: str
) -> None:
    response = invoke(method, f"/executions/{execution_id}")
    assert response.status == 404
    assert response.json()["error"] == "not_found"


def test_delete_cancels_and_a_second_delete_changes_nothing(
    invoke: Invoke, executions: AsyncExecutionService
) -> None:
    execution_id = invoke("POST", "/executions", BODY).json()["execution_id"]
    cancelled = invoke("DELETE", f"/executions/{execution_id}")
    again = invoke("DELETE", f"/executions/{execution_id}")
    assert cancelled.status == again.status == 200
    assert cancelled.json()["state"] == "CANCELLED"
    assert cancelled.json()["error"]["error"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    assert again.json() == cancelled.json()
    # A cancelled execution keeps its key: a retried POST describes it rather than starting another
    assert invoke("GET", f"/executions/{execution_id}").json()["state"] == "CANCELLED"


def test_openapi_documents_the_executions_routes(invoke: Invoke, executions: AsyncExecutionService) -> None:
    document = invoke("GET", "/openapi.json").json()
    post = document["paths"]["/executions"]["post"]
    assert {"202", "400", "413", "422", "503"} <= set(post["responses"])
    assert "ExecuteRequest" in json.dumps(post["requestBody"])
    assert "ExecutionAccepted" in json.dumps(post["responses"]["202"])
    assert [parameter["name"].lower() for parameter in post["parameters"]] == ["idempotency-key"]
    item = document["paths"]["/executions/{execution_id}"]
    assert {"get", "delete"} <= set(item)
    assert "ExecutionView" in json.dumps(item["get"]["responses"]["200"])
    assert "404" in item["get"]["responses"]
    view = document["components"]["schemas"]["ExecutionView"]["properties"]
    assert set(view) == {"execution_id", "state", "result", "error", "created_at", "finished_at"}
    assert "ExecuteResponse" in json.dumps(view["result"])
