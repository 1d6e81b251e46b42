"""Local API servers served on background threads, and HTTP calls that run in the background: shared by
the worker-pool tests (stub target) and the concurrency tests (real sandbox)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from functions.devserver.server import LocalApiServer
from tests.http_support import ApiResponse

WAIT_S = 30  # bound on every wait for an event, so a wedged server fails the test instead of hanging it


class ServingThreads:
    """Serves each given server on its own thread; `stop_all` shuts them down and stops their workers."""

    def __init__(self) -> None:
        self._started: list[tuple[LocalApiServer, threading.Thread]] = []

    def serve(self, server: LocalApiServer) -> LocalApiServer:
        # A short poll interval keeps shutdown() quick.
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._started.append((server, thread))
        return server

    def stop_all(self) -> None:
        for server, thread in self._started:
            server.shutdown()
            server.server_close()
            thread.join()
        self._started.clear()


class Background:
    """One HTTP call on its own thread; `result()` waits for its response."""

    def __init__(self, call: Callable[[], ApiResponse]) -> None:
        self._response: list[ApiResponse] = []
        self._thread = threading.Thread(target=lambda: self._response.append(call()), daemon=True)
        self._thread.start()

    def result(self) -> ApiResponse:
        self._thread.join(timeout=WAIT_S)
        assert self._response, "the request did not complete"
        return self._response[0]
