"""Who the local server turns away at the door, and how it closes a connection without destroying its answer.

Every accepted connection is answered: a connection beyond a cap still gets one HTTP response, not a reset.
- One client (source address) may hold `max_per_client` connections at once; one more is answered 429 +
  Retry-After and closed. The cause is that client, and the others are still served.
- The server holds `max_connections` at once in all (each is a thread); one more is answered 503 +
  Retry-After and closed: the server is full, whoever asks.
The run slots behind the connections have their own limit (`EXEC_LOCAL_MAX_CONCURRENCY`, 503 after
`EXEC_LOCAL_QUEUE_WAIT_S`); these caps only bound the threads and sockets in front of them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from functions.api.errors import HttpError, from_execution_error
from functions.core.errors import CapacityExhaustedError, TooManyRequestsError

# When a turned-away client may try again: connections are short-lived, so soon.
CONNECTION_RETRY_AFTER_S = 1


class ConnectionLimits:
    """Open connections, per client and in all; `open` says whether a new one is turned away, and why."""

    def __init__(self, *, max_connections: int, max_per_client: int) -> None:
        if max_connections < 1 or max_per_client < 1:
            raise ValueError("connection limits must be at least 1")
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self._by_client: dict[str, int] = {}
        self._total = 0
        self._changed = threading.Condition()

    @property
    def total(self) -> int:
        with self._changed:
            return self._total

    def wait_until_total(self, count: int, *, timeout_s: float) -> bool:
        """True once exactly `count` connections are open; tests wait on this instead of sleeping."""
        with self._changed:
            return self._changed.wait_for(lambda: self._total == count, timeout=timeout_s)

    def open(self, client: str) -> HttpError | None:
        """Count a new connection of `client`; None to serve it, else the refusal to answer it with.

        A refused connection is counted too until it is closed: it holds a thread while it is answered.
        """
        with self._changed:
            held = self._by_client.get(client, 0)
            self._by_client[client] = held + 1
            self._total += 1
            total = self._total
            self._changed.notify_all()
        if held >= self.max_per_client:
            return from_execution_error(
                TooManyRequestsError(
                    f"this client already holds {held} connections; at most {self.max_per_client} "
                    "may be open at once",
                    retry_after_s=CONNECTION_RETRY_AFTER_S,
                )
            )
        if total > self.max_connections:
            return from_execution_error(
                CapacityExhaustedError(
                    f"the local server holds its maximum of {self.max_connections} connections; retry shortly",
                    retry_after_s=CONNECTION_RETRY_AFTER_S,
                )
            )
        return None

    def close(self, client: str) -> None:
        with self._changed:
            held = self._by_client.get(client, 0) - 1
            if held > 0:
                self._by_client[client] = held
            else:
                self._by_client.pop(client, None)
            self._total -= 1
            self._changed.notify_all()


def close_gracefully(connection: socket.socket, *, linger_s: float, max_drain_bytes: int) -> None:
    """Send FIN, read what the client still sends (bounded), then close.

    Closing a socket that still has unread request bytes makes the kernel answer with a reset, which can
    reach the client before it has read our response (an early 413, a refusal at the door): the lingering
    close of RFC 9112 section 9.6.
    """
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
        deadline_s = time.monotonic() + linger_s
        drained_bytes = 0
        while drained_bytes <= max_drain_bytes:
            remaining_s = deadline_s - time.monotonic()
            if remaining_s <= 0:
                break
            connection.settimeout(remaining_s)
            chunk = connection.recv(64 * 1024)
            if not chunk:
                break
            drained_bytes += len(chunk)
    connection.close()
