"""How the local server calls a Lambda handler: what both invokers share, and the in-process one.

An invoker takes one API Gateway event and returns the proxy response, the way Lambda would: each container
handles one event at a time, and a request that cannot get a container within `queue_wait_s` is answered
503 + Retry-After. `SerialInvoker` is one container in this process, behind one lock (tests inject a stub
handler this way); `functions.devserver.workers.LambdaContainers` is N containers as worker processes (`make run`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.errors import from_execution_error
from functions.api.handler import proxy_response
from functions.core.errors import CapacityExhaustedError

ProxyHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

FUNCTION_NAME = "code-exec-local"
# API Gateway's default integration timeout is 29 s; the handler sees this as its remaining time.
INVOCATION_TIMEOUT_S = 29.0


class LocalLambdaContext(LambdaContext):
    """The attributes powertools and our handler read from a real Lambda context."""

    def __init__(self, *, request_id: str, timeout_s: float = INVOCATION_TIMEOUT_S) -> None:
        self._function_name = FUNCTION_NAME
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{FUNCTION_NAME}"
        self._memory_limit_in_mb = 1024
        self._aws_request_id = request_id
        self._log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
        self._log_stream_name = "local"
        self._deadline_s = time.monotonic() + timeout_s

    # The real context's method reads the invocation's deadline; powertools' stub declares a staticmethod.
    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return max(0, int((self._deadline_s - time.monotonic()) * 1000))


class InFlight:
    """How many invocations hold a container right now; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    @property
    def count(self) -> int:
        with self._changed:
            return self._count

    @contextmanager
    def running(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def enter(self) -> None:
        self._add(1)

    def leave(self) -> None:
        self._add(-1)

    def wait_until(self, count: int, *, timeout_s: float) -> bool:
        """True once exactly `count` invocations run; False if that did not happen within `timeout_s`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == count, timeout=timeout_s)

    def _add(self, delta: int) -> None:
        with self._changed:
            self._count += delta
            self._changed.notify_all()


class Invoker(Protocol):
    in_flight: InFlight

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]: ...

    def warm(self) -> None: ...

    def close(self) -> None: ...


def busy_response(message: str, *, queue_wait_s: float) -> dict[str, Any]:
    error = CapacityExhaustedError(message, retry_after_s=max(1, math.ceil(queue_wait_s)))
    return proxy_response(from_execution_error(error))


class SerialInvoker:
    """An injected handler, in this process, one event at a time (one Lambda container)."""

    def __init__(
        self,
        handler: ProxyHandler,
        *,
        queue_wait_s: float,
        invocation_timeout_s: float = INVOCATION_TIMEOUT_S,
    ) -> None:
        self.handler = handler
        self.queue_wait_s = queue_wait_s
        self.invocation_timeout_s = invocation_timeout_s
        self.in_flight = InFlight()
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        if not self._lock.acquire(timeout=self.queue_wait_s):
            return busy_response(
                "the local server is busy with another request; retry shortly", queue_wait_s=self.queue_wait_s
            )
        try:
            with self.in_flight.running():
                context = LocalLambdaContext(
                    request_id=event["requestContext"]["requestId"], timeout_s=self.invocation_timeout_s
                )
                return self.handler(event, context)
        finally:
            self._lock.release()

    def warm(self) -> None:
        """Nothing to start: the handler lives in this process."""

    def close(self) -> None:
        """Nothing to stop."""
