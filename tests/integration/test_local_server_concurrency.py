"""`make run` serves requests concurrently: real HTTP -> local server -> worker processes -> lambda_handler ->
local sandbox, with the server built from EXEC_* settings exactly as `python -m functions serve` builds it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from functions.devserver.server import LocalApiServer
from functions.settings import Settings
from tests.http_support import http_call
from tests.local_server_support import WAIT_S, Background, ServingThreads

pytestmark = [pytest.mark.sandbox]

# Prints the wall-clock window it ran in (the sandbox shares the host's clock).
SLEEP_1_S = "import time\nstart = time.time()\ntime.sleep(1)\nprint(start, time.time())"
SLEEP_3_S = "import time\ntime.sleep(3)\nprint('done')"

StartServer = Callable[[dict[str, str]], LocalApiServer]


@pytest.fixture
def start_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[StartServer]:
    """A server built from the environment plus `env`, its workers started; stopped at the end."""
    threads = ServingThreads()

    def start(env: dict[str, str]) -> LocalApiServer:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # Settings() reads the patched environment; the workers inherit it when they are spawned (warm).
        server = LocalApiServer.for_settings(("127.0.0.1", 0), Settings())
        server.warm()
        return threads.serve(server)

    yield start
    threads.stop_all()


def run_python(server: LocalApiServer, code: str) -> Background:
    body: dict[str, Any] = {"language": "python", "encoding": "text", "code": code}
    return Background(lambda: http_call(server.url, "POST", "/execute", body))


def test_two_slow_programs_run_at_the_same_time(start_server: StartServer) -> None:
    # Given a server with two workers
    server = start_server({"EXEC_LOCAL_MAX_CONCURRENCY": "2"})

    # When two programs that each run for a second are sent together
    first, second = run_python(server, SLEEP_1_S), run_python(server, SLEEP_1_S)
    responses = [first.result(), second.result()]

    # Then both succeed, and their execution windows overlap
    for response in responses:
        assert response.status == 200, response.body
        assert response.json()["verdict"] == "accepted"
    (start_a, end_a), (start_b, end_b) = (map(float, r.json()["stdout"].split()) for r in responses)
    assert start_a < end_b
    assert start_b < end_a


def test_with_one_worker_a_second_request_gets_503_while_the_first_succeeds(
    start_server: StartServer,
) -> None:
    # Given a server with one worker and no queueing
    server = start_server({"EXEC_LOCAL_MAX_CONCURRENCY": "1", "EXEC_LOCAL_QUEUE_WAIT_S": "0"})

    # When a second request arrives while a slow one holds the worker
    first = run_python(server, SLEEP_3_S)
    assert server.wait_until_in_flight(1, timeout_s=WAIT_S)
    second = http_call(
        server.url, "POST", "/execute", {"language": "python", "encoding": "text", "code": "1"}
    )

    # Then the second is turned away with Retry-After, and the first still succeeds
    assert (second.status, second.json()["error"]) == (503, "capacity_exhausted")
    assert second.header("retry-after") == "1"
    response = first.result()
    assert response.status == 200, response.body
    assert response.json()["stdout"] == "done\n"


def test_health_answers_while_every_run_slot_is_busy(start_server: StartServer) -> None:
    # Given a server whose two workers both run a program
    server = start_server({"EXEC_LOCAL_MAX_CONCURRENCY": "2", "EXEC_LOCAL_QUEUE_WAIT_S": "0"})
    runs = [run_python(server, SLEEP_3_S), run_python(server, SLEEP_3_S)]
    assert server.wait_until_in_flight(2, timeout_s=WAIT_S)

    # When a health check and a third run arrive meanwhile
    health = http_call(server.url, "GET", "/health")
    third = http_call(server.url, "POST", "/execute", {"language": "python", "encoding": "text", "code": "1"})

    # Then health is answered at once with the configured backend, while the run is turned away
    assert (health.status, health.json()) == (200, {"status": "healthy", "backend": "local"})
    assert server.in_flight == 2
    assert (third.status, third.header("retry-after")) == (503, "1")
    assert [run.result().status for run in runs] == [200, 200]
