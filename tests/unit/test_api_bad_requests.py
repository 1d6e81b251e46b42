"""Bad input straight through `lambda_handler` with real proxy events: a 4xx with a clear message, never a 500,
and the backend is never reached (validation fails before anything runs)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.api.guards import max_body_bytes
from functions.api.handler import lambda_handler
from functions.devserver.server import LocalLambdaContext
from functions.settings import get_settings
from tests.conftest import EventFactory, FakeBackend, Invoke
from tests.http_support import from_proxy

SETTINGS = get_settings()


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def execute(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"language": "python", "code": b64("print(1)")}
    body.update(fields)
    return body


def without(*names: str) -> dict[str, Any]:
    return {key: value for key, value in execute().items() if key not in names}


@dataclass(frozen=True)
class Case:
    body: Any
    status: int
    error: str
    says: str  # a fragment the message must contain
    method: str = "POST"
    path: str = "/execute"
    headers: dict[str, str] = field(default_factory=dict)


HALF_STDIN = "x" * (SETTINGS.max_stdin_bytes // 2 + 1)

CASES = {
    # language, encodings
    "unknown language": Case(execute(language="cobol"), 400, "unknown_language", "unknown language 'cobol'"),
    "bad base64 code": Case(execute(code="not base64!"), 400, "invalid_request", "code is not valid base64"),
    "bad base64 stdin": Case(execute(stdin="@@@"), 400, "invalid_request", "stdin is not valid base64"),
    "bad base64 expected output": Case(
        execute(test_cases=[{"stdin": "", "expected_output": "%%"}]),
        400,
        "invalid_request",
        "test_cases[0].expected_output is not valid base64",
    ),
    "unknown encoding": Case(execute(encoding="hex"), 400, "invalid_request", "encoding:"),
    "code not UTF-8": Case(execute(code=b64(b"\xff\xfe")), 400, "invalid_request", "UTF-8"),
    "empty code": Case(execute(code=""), 400, "invalid_request", "code is empty"),
    "lone surrogate in text": Case(
        execute(encoding="text", code="\ud800"), 400, "invalid_request", "valid Unicode"
    ),
    # missing fields and wrong types
    "missing language": Case(without("language"), 400, "invalid_request", "language: field required"),
    "missing code": Case(without("code"), 400, "invalid_request", "code: field required"),
    "no body": Case(None, 400, "invalid_request", "JSON object"),
    "body is a list": Case([1, 2], 400, "invalid_request", "JSON object"),
    "body is null": Case("null", 400, "invalid_request", "JSON object"),
    "language not a string": Case(execute(language=5), 400, "invalid_request", "language: input should be"),
    "timeout not a number": Case(execute(timeout="soon"), 400, "invalid_request", "timeout: input should be"),
    "timeout a numeric string": Case(
        execute(timeout="5"), 400, "invalid_request", "timeout: input should be"
    ),
    "timeout a boolean": Case(execute(timeout=True), 400, "invalid_request", "timeout: input should be"),
    "timeout infinite": Case(
        '{"language": "python", "code": "eA==", "timeout": 1e999}', 400, "invalid_request", "timeout:"
    ),
    "memory a numeric string": Case(
        execute(memory_limit_mb="64"), 400, "invalid_request", "memory_limit_mb: input should be"
    ),
    "memory a boolean": Case(execute(memory_limit_mb=True), 400, "invalid_request", "memory_limit_mb: input"),
    "memory not an integer": Case(
        execute(memory_limit_mb=1.5), 400, "invalid_request", "memory_limit_mb: input should be"
    ),
    "args not a list": Case(execute(args="-v"), 400, "invalid_request", "args: input should be a valid list"),
    "arg not a string": Case(execute(args=[1]), 400, "invalid_request", "args[0]: input should be"),
    "test case stdin not a string": Case(
        execute(test_cases=[{"stdin": 5}]), 400, "invalid_request", "test_cases[0].stdin: input should be"
    ),
    "test_cases empty": Case(execute(test_cases=[]), 400, "invalid_request", "test_cases:"),
    "stdin beside test_cases": Case(
        execute(stdin=b64("1"), test_cases=[{"stdin": b64("2")}]), 400, "invalid_request", "inside each test"
    ),
    "extra unknown field": Case(execute(bogus=1), 400, "invalid_request", "bogus: unknown field"),
    "extra field in a test case": Case(
        execute(test_cases=[{"stdin": "", "weight": 2}]), 400, "invalid_request", "test_cases[0].weight"
    ),
    # limits
    "negative timeout": Case(execute(timeout=-1), 400, "invalid_request", "timeout: input should be greater"),
    "zero timeout": Case(execute(timeout=0), 400, "invalid_request", "timeout: input should be greater"),
    "timeout above ceiling": Case(
        execute(timeout=SETTINGS.max_timeout_s + 1), 400, "invalid_request", "above the ceiling"
    ),
    "negative memory": Case(execute(memory_limit_mb=-5), 400, "invalid_request", "memory_limit_mb: input"),
    "memory above ceiling": Case(
        execute(memory_limit_mb=SETTINGS.max_memory_limit_mb + 1), 400, "invalid_request", "is outside"
    ),
    "memory below minimum": Case(
        execute(memory_limit_mb=max(1, SETTINGS.min_memory_limit_mb - 1)),
        400,
        "invalid_request",
        "is outside",
    ),
    "too many args": Case(execute(args=["a"] * (SETTINGS.max_args + 1)), 400, "invalid_request", "args"),
    "too many test cases": Case(
        execute(test_cases=[{"stdin": ""}] * (SETTINGS.max_test_cases + 1)),
        400,
        "invalid_request",
        "test cases",
    ),
    # sizes
    "oversize code": Case(
        execute(code=b64("#" * (SETTINGS.max_code_bytes + 1))), 413, "payload_too_large", "code is"
    ),
    "oversize stdin": Case(
        execute(stdin=b64("x" * (SETTINGS.max_stdin_bytes + 1))), 413, "payload_too_large", "stdin"
    ),
    "stdin oversize only summed over test cases": Case(
        execute(test_cases=[{"stdin": b64(HALF_STDIN)}, {"stdin": b64(HALF_STDIN)}]),
        413,
        "payload_too_large",
        "over all test cases",
    ),
    "body beyond any valid request": Case(
        execute(stdin="A" * (max_body_bytes(SETTINGS) + 1)), 413, "payload_too_large", "request body is"
    ),
    # bytes that are not a JSON object
    "body not UTF-8": Case(
        b'{"language": "python", "code": "\xff"}', 400, "invalid_json", "byte 32 is not valid UTF-8"
    ),
    "body in Latin-1": Case(
        '{"language": "pyth\u00f6n", "code": ""}'.encode("latin-1"), 400, "invalid_json", "UTF-8"
    ),
    "binary body": Case(bytes(range(256)), 400, "invalid_json", "UTF-8"),
    "body with a byte-order mark": Case(
        b"\xef\xbb\xbf" + json.dumps(execute()).encode(), 400, "invalid_json", "BOM"
    ),
    "body is a JSON string": Case('"print(1)"', 400, "invalid_request", "JSON object"),
    "body is a JSON number": Case("42", 400, "invalid_request", "JSON object"),
    "body is an empty object": Case({}, 400, "invalid_request", "language: field required"),
    "JSON followed by garbage": Case(json.dumps(execute()) + " x", 400, "invalid_json", "Extra data"),
    "NUL bytes": Case(b"\x00" * 64, 400, "invalid_json", "not valid JSON"),
    # syntax, media type, routing
    "invalid JSON": Case('{"language": "python",', 400, "invalid_json", "not valid JSON"),
    "JSON nested too deeply": Case("[" * 100_000, 400, "invalid_json", "nested too deeply"),
    "an integer of 5000 digits": Case(
        '{"language": "python", "code": "", "memory_limit_mb": ' + "9" * 5000 + "}",
        400,
        "invalid_json",
        "too many digits",
    ),
    "form-encoded body": Case(
        "language=python",
        415,
        "unsupported_media_type",
        "application/json",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "plain-text body": Case(
        json.dumps(execute()),
        415,
        "unsupported_media_type",
        "application/json",
        headers={"Content-Type": "text/plain"},
    ),
    "GET /execute": Case(None, 405, "method_not_allowed", "use POST", method="GET"),
    "DELETE /execute": Case(None, 405, "method_not_allowed", "use POST", method="DELETE"),
    "POST /health": Case(execute(), 405, "method_not_allowed", "use GET", path="/health"),
    "unknown path": Case(None, 404, "not_found", "/nowhere", method="GET", path="/nowhere"),
    "unknown path with a body": Case(execute(), 404, "not_found", "/run", path="/run"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_gets_a_clear_4xx_and_never_reaches_the_backend(
    case: Case, invoke: Invoke, fake_backend: FakeBackend
) -> None:
    # Given a request that is wrong in exactly one way
    # When it goes through the Lambda handler as an API Gateway event
    response = invoke(case.method, case.path, case.body, headers=case.headers)

    # Then the status and error code are the table's, the message names the problem, nothing ran
    body = response.json()
    assert (response.status, body["error"]) == (case.status, case.error), body
    assert case.says in body["message"]
    assert "Traceback" not in body["message"]
    assert set(body) == {"error", "message"}
    assert response.header("content-type") == "application/json"
    assert fake_backend.tasks == []


def test_a_base64_flagged_body_that_is_not_base64_is_refused(
    api_event: EventFactory, fake_backend: FakeBackend
) -> None:
    # Given an event marked base64-encoded whose body is not base64 (API Gateway never sends one; a caller
    # building events by hand might)
    event = api_event("POST", "/execute", execute())
    event["isBase64Encoded"] = True

    # When it reaches the handler
    response = from_proxy(lambda_handler(event, LocalLambdaContext(request_id="r")))

    # Then 400, not a decoding exception
    assert (response.status, response.json()["error"]) == (400, "invalid_json")
    assert "not valid base64" in response.json()["message"]
    assert fake_backend.tasks == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
REQUEST_FIELDS = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(("language", "code", "stdin", "timeout", "encoding", "args"), JSON_VALUES),
)
ANY_BODY = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=256).map(str.encode),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    REQUEST_FIELDS.map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=ANY_BODY)
def test_any_body_gets_an_answer_from_the_error_table(
    body: bytes, invoke: Invoke, fake_backend: FakeBackend
) -> None:
    # Given any bytes at all as the body of POST /execute
    # When they reach the handler
    response = invoke("POST", "/execute", body)

    # Then the answer is a run or a 4xx with the error shape: never a 500
    assert response.status in {200, 400, 413}, response.body
    if response.status != 200:
        assert set(response.json()) == {"error", "message"}


def test_wrong_method_lists_the_allowed_ones(invoke: Invoke, fake_backend: FakeBackend) -> None:
    # Given a known path called with a method it does not serve
    response = invoke("PUT", "/languages")

    # Then 405 with an Allow header, as HTTP requires
    assert response.status == 405
    assert response.header("allow") == "GET"


def test_validation_message_lists_every_bad_field(invoke: Invoke, fake_backend: FakeBackend) -> None:
    # Given a body with three problems at once
    response = invoke("POST", "/execute", {"code": 7, "timeout": -1})

    # Then one 400 names all three field paths, without echoing the values
    message = response.json()["message"]
    assert response.status == 400
    for fragment in ("language: field required", "code: input should be", "timeout: input should be greater"):
        assert fragment in message
    assert "-1" not in message
