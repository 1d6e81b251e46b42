"""N Lambda containers as worker processes: what `make run` uses to call `lambda_handler` concurrently.

N = `EXEC_LOCAL_MAX_CONCURRENCY`, so the local backend's sandbox slots are used in parallel. Processes, not
threads: powertools' resolver keeps the current event in class-level state (`BaseRouter.current_event`), so
two invocations in one process would read each other's requests. Each container is its own single-worker
ProcessPoolExecutor started with "spawn" (the server has threads, so no fork; a spawned child inherits the
server's `os.environ` as it is at that moment, `EXEC_*` included). A container's first event, or `warm()`,
pays the cold start: imports, and the service built once. A worker that dies or hangs costs only its own
request, answered 502 `backend_unavailable`, and is replaced; the other containers keep running. Workers
run in their own process group (Ctrl-C reaches only the server, which then stops them) and exit by
themselves if the server dies without closing them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from functions import observability, wiring
from functions.api.errors import from_execution_error, internal_error
from functions.api.handler import lambda_handler, proxy_response
from functions.core.errors import BackendUnavailableError, CapacityExhaustedError
from functions.devserver.invokers import INVOCATION_TIMEOUT_S, InFlight, LocalLambdaContext

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
# How often a worker checks that the server that started it is still there.
ORPHAN_CHECK_INTERVAL_S = 1.0

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
        # Not fork: forking a process that runs threads (HTTP handlers, executor managers) can copy held locks.
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
        futures = [container.submit(cold_start) for container in self._containers]
        done, pending = wait(futures, timeout=WORKER_START_TIMEOUT_S)
        failures = {str(future.exception()) for future in done if future.exception() is not None}
        if pending or failures:
            reason = "; ".join(sorted(failures)) or f"not ready within {WORKER_START_TIMEOUT_S:.0f} s"
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
        try:
            future = self._submit(container, event)
        except RuntimeError as exc:  # BrokenProcessPool twice, or the executor was shut down by close()
            return _unavailable(f"no local worker could take the request ({exc})")
        bound_s = self.invocation_timeout_s + HUNG_WORKER_GRACE_S
        done, _ = wait([future], timeout=bound_s)
        if not done:
            container.replace_worker()
            return _unavailable(f"the local worker did not answer within {bound_s:.0f} s; it was replaced")
        error = future.exception()
        if error is None:
            return future.result()
        if isinstance(error, BrokenProcessPool):
            container.replace_worker()
            return _unavailable("the local worker running this request died; it was replaced")
        # lambda_handler answers every failure itself, so an exception here is a bug of ours.
        logger.error("the local worker failed to invoke the handler", exc_info=error)
        return proxy_response(internal_error())

    def _submit(self, container: _Container, event: dict[str, Any]) -> Future[dict[str, Any]]:
        try:
            return container.submit(self.target, event, self.invocation_timeout_s)
        except BrokenProcessPool:
            # The worker died while idle: nothing of this request ran yet, so a fresh worker can take it.
            container.replace_worker()
            return container.submit(self.target, event, self.invocation_timeout_s)


class _Container:
    """One Lambda container: a single worker process, replaced whole when it dies or hangs."""

    def __init__(self, context: SpawnContext) -> None:
        self.busy = False
        self._context = context
        self._lock = threading.Lock()
        self._stopped = False
        self._executor = self._new_executor()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        with self._lock:
            return self._executor.submit(fn, *args)

    def pids(self) -> list[int]:
        with self._lock:
            return list(self._processes())

    def replace_worker(self) -> None:
        with self._lock:
            self._kill()
            if not self._stopped:
                self._executor = self._new_executor()

    def stop(self, *, kill: bool) -> None:
        with self._lock:
            self._stopped = True
            if kill:
                self._kill()
                return
            # An idle worker first releases its service (sandboxes started ahead of demand), then exits.
            with contextlib.suppress(Exception):
                self._executor.submit(wiring.close_service).result(timeout=RELEASE_TIMEOUT_S)
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1, mp_context=self._context, initializer=_start_worker, initargs=(os.getpid(),)
        )

    def _processes(self) -> dict[int, BaseProcess]:
        # The executor offers no public way to reach a busy worker; None once it is shut down.
        return dict(self._executor._processes or {})

    def _kill(self) -> None:
        for process in self._processes().values():
            if process.is_alive():
                process.kill()
        self._executor.shutdown(wait=True, cancel_futures=True)


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


def _start_worker(server_pid: int) -> None:
    # Its own process group: Ctrl-C at the terminal reaches only the server, which then stops the workers.
    os.setpgid(0, 0)
    # Nothing collects EMF metric lines locally; `serve` turns them off in the server process too.
    observability.set_metrics_enabled(False)
    threading.Thread(target=_exit_when_orphaned, args=(server_pid,), name="orphan-watch", daemon=True).start()


def _exit_when_orphaned(server_pid: int) -> None:
    """A server killed without closing its containers leaves no worker behind (nor, by bubblewrap's
    --die-with-parent, any sandbox)."""
    while os.getppid() == server_pid:
        time.sleep(ORPHAN_CHECK_INTERVAL_S)
    os._exit(1)
