"""What the local server's HTTP layer answers itself (malformed request lines, oversize headers, bodies that do
not arrive) and what it hands to the router (any method token), over raw sockets: always the API's JSON error
shape, never the stdlib's HTML. The handler is the real `lambda_handler`, in-process, over a fake backend."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from functions.api.handler import lambda_handler
from functions.devserver.server import LocalApiServer
from tests.conftest import FakeBackend
from tests.local_server_support import WAIT_S, ServingThreads


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(connection: socket.socket, method: str = "GET") -> RawResponse:
    response = http.client.HTTPResponse(connection, method=method)
    response.begin()
    body = response.read()
    return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def exchange(server: LocalApiServer, data: bytes, *, half_close: bool = False) -> RawResponse:
    """Send `data` as it is on a new connection and read one response."""
    with socket.create_connection(address(server), timeout=WAIT_S) as connection:
        connection.sendall(data)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        return read_response(connection)


def address(server: LocalApiServer) -> tuple[str, int]:
    host, port = server.server_address[0], server.server_address[1]
    return str(host), port


@pytest.fixture
def server(fake_backend: FakeBackend) -> Iterator[LocalApiServer]:
    threads = ServingThreads()
    yield threads.serve(
        LocalApiServer(("127.0.0.1", 0), handler=lambda_handler, queue_wait_s=5, request_timeout_s=1.0)
    )
    threads.stop_all()


MANY_HEADERS = b"".join(b"X-H%d: v\r\n" % index for index in range(101))

# raw request -> (status, error code); the HTTP layer decides each before any routing.
HTTP_LAYER = {
    "request line without a target": (b"HELLO\r\n\r\n", 400, "malformed_request"),
    "unknown HTTP version": (b"GET /health HTTP/1.x\r\n\r\n", 400, "malformed_request"),
    "HTTP/2 request line": (b"GET /health HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"),
    "request line over 64 KiB": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
    "header line over 64 KiB": (
        b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        431,
        "headers_too_large",
    ),
    "more than 100 headers": (b"GET /health HTTP/1.1\r\n" + MANY_HEADERS + b"\r\n", 431, "headers_too_large"),
    "method that is not a token": (b"G(T /health HTTP/1.1\r\n\r\n", 400, "malformed_request"),
    "two Content-Length headers": (
        b"POST /execute HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
        "invalid_request",
    ),
    "Content-Length not a number": (
        b"POST /execute HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        400,
        "invalid_request",
    ),
    "Content-Length in superscript digits": (
        b"POST /execute HTTP/1.1\r\nContent-Length: \xb9\xb2\r\n\r\n{}",
        400,
        "invalid_request",
    ),
    "header line without a colon, hiding Content-Length and a second request": (
        (
            b"POST /execute HTTP/1.1\r\nContent-Type: application/json\r\nNoColon\r\nContent-Length: 37\r\n\r\n"
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        400,
        "malformed_request",
    ),
    "chunked body": (
        b"POST /execute HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        411,
        "length_required",
    ),
}


@pytest.mark.parametrize(("request_bytes", "status", "error"), HTTP_LAYER.values(), ids=HTTP_LAYER.keys())
def test_what_the_http_layer_refuses_comes_back_as_a_json_error(
    server: LocalApiServer, fake_backend: FakeBackend, request_bytes: bytes, status: int, error: str
) -> None:
    # When a request the HTTP layer cannot serve arrives
    response = exchange(server, request_bytes)

    # Then the answer is the API's error shape, the connection is closed, and nothing ran
    assert (response.status, response.json()["error"]) == (status, error)
    assert set(response.json()) == {"error", "message"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert fake_backend.tasks == []


def test_the_offending_request_line_is_not_echoed(server: LocalApiServer) -> None:
    response = exchange(server, b"<script>alert(1)</script>\r\n\r\n")

    assert response.status == 400
    assert b"script" not in response.body


def test_a_body_that_ends_early_is_a_400(server: LocalApiServer) -> None:
    # Given a client that announces 100 bytes, sends 10 and stops sending
    request = (
        b"POST /execute HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    )

    # When it half-closes the connection
    response = exchange(server, request, half_close=True)

    # Then it still reads why its request failed
    assert (response.status, response.json()["error"]) == (400, "malformed_request")
    assert "10 of the 100 bytes" in response.json()["message"]


def test_a_body_that_stalls_is_a_408(server: LocalApiServer) -> None:
    # Given a client that sends part of its body and then nothing, with the connection open
    request = b"POST /execute HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"

    # When the server's read timeout passes
    response = exchange(server, request)

    # Then the client is told, instead of the connection vanishing
    assert (response.status, response.json()["error"]) == (408, "request_timeout")


METHODS = {
    "TRACE on /execute": ("TRACE", "/execute", 405, "POST"),
    "TRACE on /health": ("TRACE", "/health", 405, "GET"),
    "PROPFIND on /languages": ("PROPFIND", "/languages", 405, "GET"),
    "a made-up method on /execute": ("BREW", "/execute", 405, "POST"),
    "TRACE on an unknown path": ("TRACE", "/nowhere", 404, None),
    "PUT on an execution": ("PUT", "/executions/" + "a" * 32, 405, "DELETE, GET"),
    "POST on a Judge0 submission": ("POST", "/judge0/submissions/" + "0" * 32, 405, "DELETE, GET"),
    "DELETE on a Judge0 language": ("DELETE", "/judge0/languages/71", 405, "GET"),
    "PUT below an execution": ("PUT", "/executions/" + "a" * 32 + "/more", 404, None),
    "GET of an execution id no route accepts": ("GET", "/executions/a%20b", 404, None),
}


@pytest.mark.parametrize(("method", "path", "status", "allow"), METHODS.values(), ids=METHODS.keys())
def test_any_method_token_reaches_the_router(
    server: LocalApiServer, method: str, path: str, status: int, allow: str | None
) -> None:
    # When a method the API does not serve is sent
    response = exchange(server, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    # Then the router answers it like any wrong method: JSON, with Allow on a known path
    assert response.status == status
    assert response.headers.get("allow") == allow
    assert response.json()["error"] == ("method_not_allowed" if status == 405 else "not_found")


def test_keep_alive_serves_many_requests_on_one_connection(server: LocalApiServer) -> None:
    # Given one HTTP/1.1 connection
    host, port = address(server)
    connection = http.client.HTTPConnection(host, port, timeout=WAIT_S)
    try:
        # When it carries a run, an error the router decides and a health check, one after the other
        statuses, sockets = [], []
        for method, path, body in (
            ("POST", "/execute", {"language": "python", "encoding": "text", "code": "print(1)"}),
            ("TRACE", "/execute", None),
            ("GET", "/health", None),
        ):
            data = None if body is None else json.dumps(body)
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            sockets.append(connection.sock)

        # Then all were answered over that single connection (http.client reconnects silently otherwise)
        assert statuses == [200, 405, 200]
        assert sockets[0] is not None
        assert all(sock is sockets[0] for sock in sockets)
        assert server.connections.total == 1
    finally:
        connection.close()


def test_kept_alive_answers_are_sent_without_waiting_for_the_clients_ack(fake_backend: FakeBackend) -> None:
    # Given a server whose handler records its accepted socket's TCP_NODELAY: the status line and headers,
    # then the body, are two writes, and with Nagle's algorithm the body would wait for the client's delayed
    # ACK of the headers on every kept-alive request
    nodelay: list[int] = []
    local_server = LocalApiServer(
        ("127.0.0.1", 0), handler=lambda_handler, queue_wait_s=5, request_timeout_s=1.0
    )
    serving_handler = local_server.RequestHandlerClass

    class Recording(serving_handler):  # type: ignore[valid-type,misc]
        def setup(self) -> None:
            super().setup()
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    local_server.RequestHandlerClass = Recording
    threads = ServingThreads()
    try:
        served = threads.serve(local_server)

        # When one connection sends two requests
        with socket.create_connection(address(served), timeout=WAIT_S) as connection:
            statuses = []
            for _ in range(2):
                connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                statuses.append(read_response(connection).status)
    finally:
        threads.stop_all()

    # Then both are answered on it, by a handler whose socket sends small writes at once
    assert statuses == [200, 200]
    assert len(nodelay) == 1
    assert nodelay[0] != 0
