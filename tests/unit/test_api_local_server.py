"""The local server's two conversions (HTTP -> proxy event, proxy response -> HTTP) and its plumbing, with a
stub handler: no sandbox, no service."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.devserver.server import (
    MAX_PAYLOAD_BYTES,
    LocalApiServer,
    LocalLambdaContext,
    build_event,
    response_parts,
)
from tests.http_support import http_call

# Every key of a REST API (payload 1.0) proxy event, as API Gateway sends it.
REST_EVENT_KEYS = {
    "resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
    "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext", "body",
    "isBase64Encoded",
}  # fmt: skip
REQUEST_CONTEXT_KEYS = {
    "accountId", "apiId", "domainName", "httpMethod", "identity", "path", "protocol", "requestId",
    "requestTime", "requestTimeEpoch", "resourceId", "resourcePath", "stage",
}  # fmt: skip


def test_a_post_becomes_a_rest_proxy_event() -> None:
    # Given an HTTP request with a query string, a repeated header and a JSON body
    event = build_event(
        method="post",
        target="/execute?trace=1&tag=a&tag=b",
        headers=[
            ("Host", "localhost:8000"),
            ("Content-Type", "application/json"),
            ("X-Tag", "1"),
            ("X-Tag", "2"),
        ],
        body=b'{"language": "python"}',
        source_ip="10.0.0.7",
        request_id="req-1",
        now=datetime(2026, 11, 26, 5, 0, 0, tzinfo=UTC),
    )

    # Then it has the REST proxy shape, and powertools reads it as API Gateway would
    assert set(event) == REST_EVENT_KEYS
    assert set(event["requestContext"]) >= REQUEST_CONTEXT_KEYS
    assert event["headers"]["X-Tag"] == "2"
    assert event["multiValueHeaders"]["X-Tag"] == ["1", "2"]
    assert event["requestContext"]["requestTime"] == "26/Nov/2026:05:00:00 +0000"
    parsed = APIGatewayProxyEvent(event)
    assert (parsed.http_method, parsed.path, parsed.resource) == ("POST", "/execute", "/{proxy+}")
    assert parsed.json_body == {"language": "python"}
    assert parsed.query_string_parameters == {"trace": "1", "tag": "b"}
    assert parsed.multi_value_query_string_parameters == {"trace": ["1"], "tag": ["a", "b"]}
    assert parsed.request_context.request_id == "req-1"
    assert parsed.request_context.identity.source_ip == "10.0.0.7"
    assert parsed.request_context.stage == "local"
    assert parsed.path_parameters == {"proxy": "execute"}


def test_a_bodyless_get_has_null_body_and_parameters() -> None:
    event = build_event(method="GET", target="/", headers=[], body=b"", source_ip="127.0.0.1")

    assert (event["body"], event["isBase64Encoded"], event["resource"]) == (None, False, "/")
    assert event["queryStringParameters"] is None
    assert event["pathParameters"] is None


def test_a_binary_body_travels_base64_encoded() -> None:
    event = build_event(method="POST", target="/x", headers=[], body=b"\xff\x00\xfe", source_ip="127.0.0.1")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"


def test_percent_encoded_paths_are_decoded_like_api_gateway() -> None:
    event = build_event(method="GET", target="/a%20b", headers=[], body=b"", source_ip="127.0.0.1")

    assert event["path"] == "/a b"


RESPONSES = {
    "multi-value headers": (
        {"statusCode": 201, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": "ok"},
        [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        b"ok",
    ),
    "single headers merged, multi wins": (
        {
            "statusCode": 200,
            "headers": {"X-A": "1", "X-B": "s"},
            "multiValueHeaders": {"X-B": ["m"]},
            "body": "",
        },
        [("X-B", "m"), ("X-A", "1")],
        b"",
    ),
    "base64 body": (
        {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b"\x00\x01").decode()},
        [],
        b"\x00\x01",
    ),
    "hop-by-hop headers dropped": (
        {"statusCode": 200, "headers": {"Content-Length": "99", "Connection": "keep-alive"}, "body": "é"},
        [],
        "é".encode(),
    ),
}


@pytest.mark.parametrize(("proxy", "headers", "body"), RESPONSES.values(), ids=RESPONSES.keys())
def test_proxy_responses_become_http(
    proxy: dict[str, Any], headers: list[tuple[str, str]], body: bytes
) -> None:
    status, actual_headers, actual_body = response_parts(proxy)

    assert status == proxy["statusCode"]
    assert sorted(actual_headers) == sorted(headers)
    assert actual_body == body


def test_the_context_counts_down_to_its_deadline() -> None:
    context = LocalLambdaContext(request_id="r", timeout_s=30)

    assert 0 < context.get_remaining_time_in_millis() <= 30_000
    assert context.aws_request_id == "r"
    assert context.function_name


# --- the server itself, with a stub handler ---------------------------------------------------------------

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class StubHandler:
    """Echoes the event it got; a request to /slow can be made to block until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.events.append(event)
        if event["path"] == "/slow":
            self.entered.set()
            assert self.release.wait(timeout=30)
        body = json.dumps({"path": event["path"], "request_id": context.aws_request_id})
        return {"statusCode": 200, "multiValueHeaders": {"Content-Type": ["application/json"]}, "body": body}


@pytest.fixture
def stub() -> StubHandler:
    return StubHandler()


@pytest.fixture
def server(stub: StubHandler) -> Iterator[LocalApiServer]:
    server = LocalApiServer(("127.0.0.1", 0), handler=stub, queue_wait_s=0.2)
    # A short poll interval keeps shutdown() quick.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    stub.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_each_request_reaches_the_handler_as_an_event(server: LocalApiServer, stub: StubHandler) -> None:
    # When a real HTTP request arrives
    response = http_call(server.url, "POST", "/execute?x=1", {"a": 1})

    # Then the handler got the event and its answer came back as HTTP
    assert response.status == 200
    assert response.json()["path"] == "/execute"
    event = stub.events[0]
    assert (event["httpMethod"], event["body"], event["queryStringParameters"]) == (
        "POST",
        '{"a": 1}',
        {"x": "1"},
    )
    assert response.json()["request_id"] == event["requestContext"]["requestId"]


def test_a_busy_server_answers_503_with_retry_after_but_health_still_answers(
    server: LocalApiServer, stub: StubHandler
) -> None:
    # Given a request that holds the run lane
    stub.release.clear()
    first = threading.Thread(target=http_call, args=(server.url, "POST", "/slow"))
    first.start()
    assert stub.entered.wait(timeout=30)

    # When another run and a health check arrive meanwhile
    second = http_call(server.url, "POST", "/execute", {"language": "python"})
    health = http_call(server.url, "GET", "/health")

    # Then the run is turned away with a hint when to retry, instead of waiting indefinitely, while the
    # health check is answered by the quick lane
    stub.release.set()
    first.join()
    assert second.status == 503
    assert second.header("retry-after") == "1"
    assert second.json()["error"] == "capacity_exhausted"
    assert (health.status, health.json()["path"]) == (200, "/health")


def test_a_body_beyond_the_gateway_limit_is_refused_unread(server: LocalApiServer, stub: StubHandler) -> None:
    # Given a client announcing a body larger than API Gateway accepts
    host, port = server.server_address[0], server.server_address[1]
    connection = http.client.HTTPConnection(str(host), port, timeout=30)
    connection.putrequest("POST", "/execute")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_PAYLOAD_BYTES + 1))
    connection.endheaders()

    # When the server answers before the body is sent
    response = connection.getresponse()

    # Then 413, the connection is closed, and the handler never ran
    assert response.status == 413
    assert json.loads(response.read())["error"] == "payload_too_large"
    assert response.getheader("Connection") == "close"
    assert stub.events == []
    connection.close()


def test_chunked_bodies_need_a_length(server: LocalApiServer, stub: StubHandler) -> None:
    response = http_call(server.url, "POST", "/execute", headers={"Transfer-Encoding": "chunked"})

    assert response.status == 411
    assert stub.events == []


def test_head_gets_headers_without_a_body(server: LocalApiServer) -> None:
    host, port = server.server_address[0], server.server_address[1]
    connection = http.client.HTTPConnection(str(host), port, timeout=30)
    connection.request("HEAD", "/health")
    response = connection.getresponse()

    assert response.status == 200
    assert int(response.getheader("Content-Length") or 0) > 0
    assert response.read() == b""
    connection.close()
