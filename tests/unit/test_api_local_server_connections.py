"""The local server's door: a burst of connections waits in the listen backlog instead of being reset, the
per-client and total connection caps answer 429 and 503 with Retry-After, and a connection closed early with
unread request bytes still delivers its answer (lingering close). Stub handler: no sandbox, no service."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.devserver.server import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    MAX_PAYLOAD_BYTES,
    LocalApiServer,
)
from tests.local_server_support import WAIT_S, ServingThreads
from tests.unit.test_api_local_server_http import RawResponse, address, read_response

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
# More than Python's default listen backlog (5) many times over.
BURST = 200


def echo(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}


StartServer = Callable[..., LocalApiServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    threads = ServingThreads()

    def start(
        *,
        serve: bool = True,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_connections_per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    ) -> LocalApiServer:
        server = LocalApiServer(
            ("127.0.0.1", 0),
            handler=echo,
            queue_wait_s=5,
            max_connections=max_connections,
            max_connections_per_client=max_connections_per_client,
        )
        return threads.serve(server) if serve else server

    yield start
    threads.stop_all()


def connect(server: LocalApiServer, *, source: str = "127.0.0.1") -> socket.socket:
    """A connection from `source`: every 127.x.y.z address is this machine, and a different client."""
    return socket.create_connection(address(server), timeout=WAIT_S, source_address=(source, 0))


def ask(server: LocalApiServer, request: bytes = HEALTH, *, source: str = "127.0.0.1") -> RawResponse:
    with connect(server, source=source) as connection:
        connection.sendall(request)
        return read_response(connection)


def test_a_burst_of_connections_waits_in_the_backlog_and_is_answered(
    start_server: StartServer,
) -> None:
    # Given a listening server that is not accepting yet
    server = start_server(serve=False, max_connections=BURST, max_connections_per_client=BURST)
    try:
        # When a burst of clients connects (the kernel completes each handshake into the backlog) and asks
        clients = [socket.create_connection(address(server), timeout=2) for _ in range(BURST)]
        for client in clients:
            client.sendall(HEALTH)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()

        # Then every one of them is answered
        statuses = [read_response(client).status for client in clients]
        assert statuses == [200] * BURST
    finally:
        for client in clients:
            client.close()
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_client_over_its_connection_cap_gets_429_and_others_are_still_served(
    start_server: StartServer,
) -> None:
    # Given a client holding its maximum of two idle connections
    server = start_server(max_connections=10, max_connections_per_client=2)
    held = [connect(server), connect(server)]
    assert server.connections.wait_until_total(2, timeout_s=WAIT_S)

    # When it opens a third, and another client opens one
    third = ask(server)
    other = ask(server, source="127.0.0.2")

    # Then only the greedy client is turned away, told when to retry, and its connection closed
    assert (third.status, third.json()["error"]) == (429, "too_many_requests")
    assert third.headers["retry-after"] == "1"
    assert third.headers["connection"] == "close"
    assert other.status == 200
    # and once it lets go of a connection it is served again
    held.pop().close()
    assert server.connections.wait_until_total(1, timeout_s=WAIT_S)
    assert ask(server).status == 200
    for connection in held:
        connection.close()


def test_a_full_server_answers_503_with_retry_after(start_server: StartServer) -> None:
    # Given a server holding its maximum of two connections, from two clients
    server = start_server(max_connections=2, max_connections_per_client=2)
    held = [connect(server, source="127.0.0.2"), connect(server, source="127.0.0.3")]
    assert server.connections.wait_until_total(2, timeout_s=WAIT_S)

    # When a third client arrives
    response = ask(server, source="127.0.0.4")

    # Then the server is full for everyone: 503, with when to retry
    assert (response.status, response.json()["error"]) == (503, "capacity_exhausted")
    assert response.headers["retry-after"] == "1"
    for connection in held:
        connection.close()


def test_a_refused_connection_with_a_body_still_reads_its_answer(start_server: StartServer) -> None:
    # Given a client at its connection cap
    server = start_server(max_connections=10, max_connections_per_client=1)
    held = connect(server)
    assert server.connections.wait_until_total(1, timeout_s=WAIT_S)

    # When it sends a request with an 8 MiB body (more than the socket buffers hold) on a new connection
    body = b"x" * (8 * 1024 * 1024)
    request = b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    response = ask(server, request)

    # Then it reads the 429 instead of a connection reset
    assert response.status == 429
    held.close()


def test_an_oversize_body_sent_in_full_still_reads_its_413(start_server: StartServer) -> None:
    # Given a client that sends a body beyond the gateway limit without waiting for an answer
    server = start_server()
    body = b"x" * (MAX_PAYLOAD_BYTES + 1)
    head = b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    sent: list[bool] = []

    def send_all(connection: socket.socket) -> None:
        connection.sendall(head + body)
        sent.append(True)

    with connect(server) as connection:
        sender = threading.Thread(target=send_all, args=(connection,), daemon=True)
        sender.start()

        # When it reads the answer
        response = read_response(connection)
        sender.join(timeout=WAIT_S)

    # Then it is the 413, not a reset, and the whole body could be sent
    assert (response.status, response.json()["error"]) == (413, "payload_too_large")
    assert sent == [True]
