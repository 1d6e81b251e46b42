"""N Lambda containers as worker processes: what `make run` uses to call `lambda_handler` concurrently.

N = `EXEC_LOCAL_MAX_CONCURRENCY`, so the local backend's sandbox slots are used in parallel. Processes, not
threads: powertools' resolver keeps the current event in class-level state (`BaseRouter.current_event`), so
two invocations in one process would read each other's requests. Each container is one worker process
(`worker_process.py`) started with "spawn" (the server has threads, so no fork; a spawned child inherits the
server's `os.environ` as it is at that moment, `EXEC_*` included) on its first event or `warm()`, which
pays the cold start: imports, and the service built once. A worker that dies or hangs costs only its own
request, answered 502 `backend_unavailable`, and is replaced; the other containers keep running.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.context import SpawnContext
from typing import Any

from functions import wiring
from functions.api.errors import from_execution_error, internal_error
from functions.api.handler import lambda_handler, proxy_response
from functions.core.errors import BackendUnavailableError, CapacityExhaustedError
from functions.devserver.invokers import INVOCATION_TIMEOUT_S, InFlight, LocalLambdaContext
from functions.devserver.worker_process import WorkerCallError, WorkerGoneError, WorkerProcess

# What a worker process runs for one event: (event, invocation timeout in s) -> proxy response. It crosses
# into the worker by reference, so it must be a module-level function.
WorkerTarget = Callable[[dict[str, Any], float], dict[str, Any]]

# A worker still silent this long after its invocation timeout is hung: it is killed and replaced.
HUNG_WORKER_GRACE_S = 15.0
# On close, running invocations get this long to answer before their workers are killed.
CLOSE_GRACE_S = 5.0
# How long an idle worker may take to release its service before it is stopped anyway.
RELEASE_TIMEOUT_S = 10.0
WORKER_START_TIMEOUT_S = 60.0

logger = logging.getLogger(__name__)


class LambdaContainers:
    """N containers, each a worker process taking one event at a time; a request waits `queue_wait_s` at most."""

    def __init__(
        self,
        count: int,
        *,
        queue_wait_s: float,
        target: WorkerTarget | None = None,
        invocation_timeout_s: float = INVOCATION_TIMEOUT_S,
    ) -> None:
        if count < 1:
            raise ValueError("at least one container is needed")
        self.count = count
        self.queue_wait_s = queue_wait_s
        self.target = target or invoke_lambda_handler
        self.invocation_timeout_s = invocation_timeout_s
        self.in_flight = InFlight()
        # Not fork: forking a process that runs threads (HTTP handlers, the warm pool's) can copy held locks.
        context = multiprocessing.get_context("spawn")
        self._containers = [_Container(context) for _ in range(count)]
        # Last in, first out: the most recently used container is the warmest.
        self._idle: queue.LifoQueue[_Container] = queue.LifoQueue()
        for container in self._containers:
            self._idle.put(container)
        self._lock = threading.Lock()
        self._closed = False

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            with self._slot() as container:
                return self._call(container, event)
        except CapacityExhaustedError as exc:
            return proxy_response(from_execution_error(exc))

    def warm(self) -> None:
        """Start every worker and build its service now (a container's init phase), not on a first request."""
        failures: set[str] = set()
        started = []
        for container in self._containers:  # every worker starts at once; each answers once it is built
            try:
                container.send(cold_start)
                started.append(container)
            except WorkerGoneError as exc:
                failures.add(str(exc))
        for container in started:
            try:
                container.receive(WORKER_START_TIMEOUT_S)
            except (WorkerGoneError, WorkerCallError, TimeoutError) as exc:
                failures.add(str(exc).strip().splitlines()[-1])  # a traceback's last line names the error
        if failures:
            reason = "; ".join(sorted(failures))
            raise BackendUnavailableError(f"the local worker processes did not start: {reason}")

    def worker_pids(self) -> list[int]:
        return [pid for container in self._containers for pid in container.pids()]

    def close(self) -> None:
        """Stop every worker: idle ones at once, running ones after `CLOSE_GRACE_S` at most (killed then)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.in_flight.wait_until(0, timeout_s=CLOSE_GRACE_S)
        for container in self._containers:
            # A killed worker takes its sandbox with it (bubblewrap runs with --die-with-parent).
            container.stop(kill=container.busy)

    @contextmanager
    def _slot(self) -> Iterator[_Container]:
        try:
            container = self._idle.get(timeout=self.queue_wait_s)
        except queue.Empty:
            raise CapacityExhaustedError(
                f"all {self.count} local workers are busy; retry shortly",
                retry_after_s=max(1, math.ceil(self.queue_wait_s)),
            ) from None
        with self._lock:
            if self._closed:
                raise CapacityExhaustedError("the local server is stopping")
            container.busy = True
            self.in_flight.enter()
        try:
            yield container
        finally:
            with self._lock:
                container.busy = False
                self.in_flight.leave()
                if not self._closed:
                    self._idle.put(container)

    def _call(self, container: _Container, event: dict[str, Any]) -> dict[str, Any]:
        bound_s = self.invocation_timeout_s + HUNG_WORKER_GRACE_S
        try:
            try:
                container.send(self.target, event, self.invocation_timeout_s)
            except WorkerGoneError:
                # The worker died while idle: nothing of this request ran yet, so a fresh worker can take it.
                container.replace_worker()
                container.send(self.target, event, self.invocation_timeout_s)
            result: dict[str, Any] = container.receive(bound_s)
        except TimeoutError:
            container.replace_worker()
            return _unavailable(f"the local worker did not answer within {bound_s:.0f} s; it was replaced")
        except WorkerGoneError:
            container.replace_worker()
            return _unavailable("the local worker running this request died; it was replaced")
        except WorkerCallError:
            # lambda_handler answers every failure itself, so an exception here is a bug of ours.
            logger.exception("the local worker failed to invoke the handler")
            return proxy_response(internal_error())
        return result


class _Container:
    """One Lambda container: a single worker process, started on first use, replaced whole when it dies or
    hangs. One caller at a time (the idle queue hands a container to one request)."""

    def __init__(self, context: SpawnContext) -> None:
        self.busy = False
        self._context = context
        self._lock = threading.Lock()
        self._stopped = False
        self._worker: WorkerProcess | None = None

    def send(self, function: Callable[..., Any], *args: Any) -> None:
        self._current().send(function, *args)

    def receive(self, timeout_s: float) -> Any:
        return self._current().receive(timeout_s)

    def pids(self) -> list[int]:
        with self._lock:
            worker = self._worker
        return [] if worker is None or worker.process.pid is None else [worker.process.pid]

    def replace_worker(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.kill()

    def stop(self, *, kill: bool) -> None:
        with self._lock:
            self._stopped = True
            worker, self._worker = self._worker, None
        if worker is None:
            return
        if kill:
            worker.kill()
            return
        # An idle worker first releases its service (sandboxes started ahead of demand), then exits.
        with contextlib.suppress(WorkerGoneError, WorkerCallError, TimeoutError):
            worker.call(wiring.close_service, timeout_s=RELEASE_TIMEOUT_S)
        worker.stop(timeout_s=RELEASE_TIMEOUT_S)

    def _current(self) -> WorkerProcess:
        with self._lock:
            if self._stopped:
                raise WorkerGoneError("the container is stopped")
            if self._worker is None:
                self._worker = WorkerProcess(self._context)
            return self._worker


def _unavailable(message: str) -> dict[str, Any]:
    logger.warning("%s", message)
    return proxy_response(from_execution_error(BackendUnavailableError(message)))


# --- what runs in the worker processes -------------------------------------------------------------------


def invoke_lambda_handler(event: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """One invocation, in a worker: the context counts down from when the worker got the event."""
    context = LocalLambdaContext(request_id=event["requestContext"]["requestId"], timeout_s=timeout_s)
    return lambda_handler(event, context)


def cold_start() -> int:
    """Build the service now, as a container's init phase would; the worker's pid says who answered."""
    wiring.get_service()
    return os.getpid()
