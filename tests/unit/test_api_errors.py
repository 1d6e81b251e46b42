"""The one error -> HTTP table, checked alone and through `lambda_handler` with a backend that fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import pytest

from functions.api import errors
from functions.api.handler import lambda_handler
from functions.core import errors as core
from functions.devserver.server import LocalLambdaContext
from tests.conftest import FakeBackend, Invoke

HELLO = {"language": "python", "encoding": "text", "code": "print(1)"}

# The contract, restated on purpose as an independent oracle: deriving it from STATUS_BY_ERROR would only
# check the table against itself. Each row adds the error code the contract promises.
TABLE = {
    "invalid request": (core.InvalidRequestError("bad field"), 400, "invalid_request"),
    "unknown language": (core.UnknownLanguageError("no such language"), 400, "unknown_language"),
    "any other permanent error": (core.PermanentError("no"), 400, "invalid_request"),
    "payload too large": (core.PayloadTooLargeError("too big"), 413, "payload_too_large"),
    "not found": (core.NotFoundError("gone"), 404, "not_found"),
    "capacity exhausted": (core.CapacityExhaustedError("busy"), 503, "capacity_exhausted"),
    "too many requests from one client": (core.TooManyRequestsError("greedy"), 429, "too_many_requests"),
    "backend unavailable": (core.BackendUnavailableError("k8s down"), 502, "backend_unavailable"),
    "deadline exceeded": (
        core.DeadlineExceededError("too slow", execution_id="e-1"),
        504,
        "deadline_exceeded",
    ),
    "any other transient error": (core.TransientError("later"), 503, "transient_error"),
}


@pytest.mark.parametrize(("error", "status", "code"), TABLE.values(), ids=TABLE.keys())
def test_table_maps_each_error_to_its_status_and_code(
    error: core.ExecutionError, status: int, code: str
) -> None:
    # When the table translates the error
    http_error = errors.from_execution_error(error)

    # Then status and code are the contract's and the message is the error's own sentence
    assert (int(http_error.status), http_error.error) == (status, code)
    assert http_error.body()["message"] == error.message


def test_capacity_errors_carry_retry_after() -> None:
    # Given a capacity error that knows when to come back, and one that does not
    timed = errors.from_execution_error(core.CapacityExhaustedError("busy", retry_after_s=7))
    untimed = errors.from_execution_error(core.CapacityExhaustedError("busy"))

    # Then both tell the client when to retry
    assert timed.headers == {"Retry-After": "7"}
    assert untimed.headers == {"Retry-After": str(errors.DEFAULT_RETRY_AFTER_S)}


def test_too_many_requests_carries_retry_after() -> None:
    http_error = errors.from_execution_error(core.TooManyRequestsError("greedy", retry_after_s=3))

    assert http_error.headers == {"Retry-After": "3"}


def test_deadline_body_carries_the_execution_id() -> None:
    http_error = errors.from_execution_error(core.DeadlineExceededError("too slow", execution_id="abc"))

    assert http_error.body() == {"error": "deadline_exceeded", "message": "too slow", "execution_id": "abc"}


def test_an_error_outside_the_table_is_an_internal_error() -> None:
    # Given the base class itself, which nothing should raise
    http_error = errors.from_execution_error(core.ExecutionError("?"))

    # Then it is treated as a bug, with a message that reveals nothing
    assert http_error.status is HTTPStatus.INTERNAL_SERVER_ERROR
    assert http_error.body()["error"] == "internal_error"


FIELD_PATHS = {
    "top-level field": (("body", "language"), "language"),
    "nested list item": (("body", "test_cases", 0, "stdin"), "test_cases[0].stdin"),
    "list element": (("body", "args", 2), "args[2]"),
    "the body itself": (("body",), "body"),
}


@pytest.mark.parametrize(("location", "expected"), FIELD_PATHS.values(), ids=FIELD_PATHS.keys())
def test_field_paths_read_like_the_request(location: tuple[object, ...], expected: str) -> None:
    assert errors.field_path(location) == expected


TRANSIENT = {
    "capacity": (
        core.CapacityExhaustedError("all sandboxes are busy", retry_after_s=3),
        503,
        {"retry-after": "3"},
    ),
    "backend": (core.BackendUnavailableError("image pull failed"), 502, {}),
    "deadline": (core.DeadlineExceededError("budget ran out", execution_id="run-42"), 504, {}),
}


@pytest.mark.parametrize(("error", "status", "headers"), TRANSIENT.values(), ids=TRANSIENT.keys())
def test_backend_failures_reach_the_client_through_the_handler(
    error: core.ExecutionError,
    status: int,
    headers: dict[str, str],
    invoke: Invoke,
    fake_backend: FakeBackend,
) -> None:
    # Given a backend that fails this way
    fake_backend.error = error

    # When a valid request arrives
    response = invoke("POST", "/execute", HELLO)

    # Then the client gets the table's status, its headers and the error's sentence
    assert response.status == status
    for name, value in headers.items():
        assert response.header(name) == value
    assert response.json()["message"] == error.message
    if isinstance(error, core.DeadlineExceededError):
        assert response.json()["execution_id"] == "run-42"


def test_a_bug_is_a_500_with_the_stack_trace_in_the_logs_only(
    invoke: Invoke, fake_backend: FakeBackend, structured_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a backend with a bug
    fake_backend.error = RuntimeError("secret internal detail")

    # When a valid request arrives
    response = invoke("POST", "/execute", HELLO)

    # Then the client sees a bare internal_error ...
    assert response.status == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "the service failed unexpectedly; this is a bug",
    }
    # ... and the structured log has the stack trace
    failures = [record for record in structured_logs() if record.get("message") == "unhandled error"]
    assert len(failures) == 1
    assert "secret internal detail" in failures[0]["exception"]
    assert "Traceback" in failures[0]["exception"]


def test_an_event_the_router_cannot_read_gets_a_json_500(
    fake_backend: FakeBackend, structured_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given something that is not an API Gateway event at all
    proxy = lambda_handler({"unexpected": True}, LocalLambdaContext(request_id="r"))

    # Then the answer is still the JSON error shape, and the cause is in the logs
    assert proxy["statusCode"] == 500
    assert json.loads(proxy["body"])["error"] == "internal_error"
    assert [record["message"] for record in structured_logs()] == ["unhandled error"]
