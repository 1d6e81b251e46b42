"""The local server's worker processes (`make run` mode), with a stub worker target: no sandbox, no service.

The target below runs inside the spawned workers (they import this module to find it). A request it holds
connects to a socket of the test and waits for one byte: the test sees the call start (accept) and decides
when it ends, so nothing here sleeps to wait.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from functions.devserver import workers as local_workers
from functions.devserver.server import LocalApiServer, build_event
from functions.devserver.workers import LambdaContainers
from functions.settings import get_settings
from tests.http_support import from_proxy, http_call
from tests.local_server_support import WAIT_S, Background, ServingThreads


def fake_worker(event: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """In a worker: /crash kills the worker, /hold waits for the test's byte, anything else echoes."""
    if event["path"] == "/crash":
        os._exit(3)
    if event["path"] == "/hold":
        port = json.loads(event["body"])["port"]
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            connection.recv(1)
    body = {
        "pid": os.getpid(),
        "path": event["path"],
        "timeout_s": timeout_s,
        "queue_wait_s": get_settings().local_queue_wait_s,
    }
    return {
        "statusCode": 200,
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "body": json.dumps(body),
    }


class Gate:
    """A listening socket that held requests connect to; `wait_entered` returns once one has."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT_S)
        self.port: int = self.listener.getsockname()[1]
        self.entered: list[socket.socket] = []

    def wait_entered(self) -> None:
        connection, _ = self.listener.accept()
        self.entered.append(connection)

    def open(self) -> None:
        for connection in self.entered:
            connection.sendall(b"x")
            connection.close()
        self.entered.clear()

    def close(self) -> None:
        self.open()
        self.listener.close()


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.close()


StartServer = Callable[..., LocalApiServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Servers in worker mode running `fake_worker`; each is shut down and its workers stopped at the end."""
    threads = ServingThreads()

    def start(*, workers: int, queue_wait_s: float = 0.0) -> LocalApiServer:
        server = LocalApiServer(
            ("127.0.0.1", 0), workers=workers, queue_wait_s=queue_wait_s, worker_target=fake_worker
        )
        return threads.serve(server)

    yield start
    threads.stop_all()


def hold(server: LocalApiServer, gate: Gate) -> Background:
    return Background(lambda: http_call(server.url, "POST", "/hold", {"port": gate.port}))


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_requests_run_at_once_in_separate_worker_processes(start_server: StartServer, gate: Gate) -> None:
    # Given two workers
    server = start_server(workers=2)

    # When two requests arrive together
    first, second = hold(server, gate), hold(server, gate)

    # Then both are inside the handler at the same time, each in its own process
    gate.wait_entered()
    gate.wait_entered()
    assert server.in_flight == 2
    gate.open()
    responses = [first.result(), second.result()]
    assert [response.status for response in responses] == [200, 200]
    assert len({response.json()["pid"] for response in responses}) == 2
    assert server.wait_until_in_flight(0, timeout_s=WAIT_S)


def test_a_request_beyond_the_workers_gets_503_with_retry_after(
    start_server: StartServer, gate: Gate
) -> None:
    # Given one worker, busy with a request
    server = start_server(workers=1, queue_wait_s=0)
    first = hold(server, gate)
    gate.wait_entered()

    # When a second request arrives meanwhile
    second = http_call(server.url, "GET", "/echo")

    # Then it is turned away with a hint when to retry, and the first one still succeeds
    assert (second.status, second.json()["error"]) == (503, "capacity_exhausted")
    assert second.header("retry-after") == "1"
    gate.open()
    assert first.result().status == 200


def test_health_answers_while_every_worker_is_busy(start_server: StartServer, gate: Gate) -> None:
    # Given one worker, busy with a request
    server = start_server(workers=1, queue_wait_s=0)
    first = hold(server, gate)
    gate.wait_entered()

    # When the health check arrives meanwhile
    health = http_call(server.url, "GET", "/health")

    # Then the real handler answers it in the server's own process, naming the configured backend
    assert (health.status, health.json()) == (200, {"status": "healthy", "backend": get_settings().backend})
    assert server.in_flight == 1
    gate.open()
    assert first.result().status == 200


def test_a_worker_that_dies_costs_its_request_a_502_and_is_replaced(start_server: StartServer) -> None:
    # Given a worker that has answered once
    server = start_server(workers=1)
    before = http_call(server.url, "GET", "/echo").json()["pid"]

    # When the worker dies during a request
    crashed = http_call(server.url, "GET", "/crash")

    # Then that request gets a JSON 502 (an infrastructure failure), and a new worker takes the next one
    assert (crashed.status, crashed.json()["error"]) == (502, "backend_unavailable")
    assert "died" in crashed.json()["message"]
    after = http_call(server.url, "GET", "/echo")
    assert after.status == 200
    assert after.json()["pid"] != before
    assert not is_running(before)


def test_a_worker_that_does_not_answer_is_replaced(monkeypatch: pytest.MonkeyPatch, gate: Gate) -> None:
    # Given workers whose invocations may last half a second, with no grace beyond that (and whose start
    # builds nothing: the fresh worker's start is waited for below, not counted in an invocation)
    monkeypatch.setattr(local_workers, "HUNG_WORKER_GRACE_S", 0.0)
    monkeypatch.setattr(local_workers, "cold_start", os.getpid)
    containers = LambdaContainers(1, queue_wait_s=0, target=fake_worker, invocation_timeout_s=0.5)
    try:
        containers.warm()
        # When a request is never released
        hung = from_proxy(containers.invoke(event("/hold", {"port": gate.port})))

        # Then it is answered 502 and, once its fresh worker has started, the container works again
        assert (hung.status, hung.json()["error"]) == (502, "backend_unavailable")
        assert "did not answer" in hung.json()["message"]
        containers.warm()
        assert from_proxy(containers.invoke(event("/echo"))).status == 200
    finally:
        containers.close()


def test_settings_from_the_environment_reach_the_workers(
    monkeypatch: pytest.MonkeyPatch, start_server: StartServer
) -> None:
    # Given an EXEC_* setting in the server's environment when its workers start
    monkeypatch.setenv("EXEC_LOCAL_QUEUE_WAIT_S", "7.25")
    server = start_server(workers=1)

    # When a worker reads its settings
    response = http_call(server.url, "GET", "/echo")

    # Then it sees the server's value
    assert response.json()["queue_wait_s"] == 7.25


def test_closing_the_server_stops_every_worker(start_server: StartServer) -> None:
    # Given a server whose workers all started
    server = start_server(workers=2)
    server.warm()
    pids = server_pids(server)
    assert len(pids) == 2

    # When it is closed
    server.shutdown()
    server.server_close()

    # Then no worker is left
    assert [pid for pid in pids if is_running(pid)] == []


def test_closing_the_server_kills_a_worker_that_is_still_running(
    monkeypatch: pytest.MonkeyPatch, start_server: StartServer, gate: Gate
) -> None:
    # Given a request in progress and no grace on close
    monkeypatch.setattr(local_workers, "CLOSE_GRACE_S", 0.0)
    server = start_server(workers=1)
    running = hold(server, gate)
    gate.wait_entered()
    pids = server_pids(server)

    # When the server is closed
    server.shutdown()
    server.server_close()

    # Then the worker is gone and its request was still answered, with a 502
    assert [pid for pid in pids if is_running(pid)] == []
    assert running.result().status == 502


def server_pids(server: LocalApiServer) -> list[int]:
    invoker = server.invoker
    assert isinstance(invoker, LambdaContainers)
    return invoker.worker_pids()


def event(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    return build_event(method="POST", target=path, headers=[], body=data, source_ip="127.0.0.1")
