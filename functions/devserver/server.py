"""`make run`: a stdlib HTTP server that turns each request into an API Gateway REST proxy event (payload
1.0), has it handled as Lambda would, and turns the proxy response back into HTTP.

Connections: a listen backlog of `LISTEN_BACKLOG` and one thread per connection, so a burst of clients is
queued by the kernel, not reset; HTTP/1.1 keep-alive. `functions.devserver.connections` caps the connections
per client (429 beyond) and in all (503 beyond). Whatever the HTTP layer itself refuses (a malformed request
line, oversize headers, a body that never arrives) is answered in the API's JSON error shape, and any
method token reaches the router, which answers 405 with `Allow` on a known path.

Two lanes behind the connections, both invokers of `functions.devserver.invokers`:
- runs: by default `LambdaContainers`, N worker processes (N = `EXEC_LOCAL_MAX_CONCURRENCY`), each one Lambda
  container calling `lambda_handler` one event at a time. Processes, because powertools' resolver keeps the
  current event in class-level state. A request that cannot get a container within
  `EXEC_LOCAL_QUEUE_WAIT_S` is answered 503 + Retry-After; one whose worker dies is answered 502.
- quick: the read-only routes that never start a run (`routes.QUICK_ROUTES`: health, languages, the API
  document) are handled in this process, one at a time, so `/health` answers while every worker runs a
  program.
A test that injects its own `handler` callable gets it in both lanes, in this process (`SerialInvoker`).
"""

from __future__ import annotations

import re
import socket
import sys
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from functions.api import errors
from functions.api.errors import HttpError
from functions.api.handler import lambda_handler, proxy_response
from functions.api.routes import QUICK_ROUTES
from functions.devserver.connections import ConnectionLimits, close_gracefully
from functions.devserver.events import build_event, response_parts
from functions.devserver.invokers import Invoker, LocalLambdaContext, ProxyHandler, SerialInvoker
from functions.devserver.workers import LambdaContainers, WorkerTarget
from functions.settings import Settings

# Tests and the bench import these from here.
__all__ = [
    "MAX_PAYLOAD_BYTES",
    "LocalApiServer",
    "LocalLambdaContext",
    "build_event",
    "response_parts",
]

# API Gateway refuses payloads above 10 MB before invoking anything; so do we, without reading them.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# Bound on waiting for the next request on a kept-alive connection, and on a stalled request.
SOCKET_TIMEOUT_S = 60.0
# Connections the kernel queues before we accept them (it caps this at net.core.somaxconn). Python's
# default of 5 reset connections under a burst of 60 clients.
LISTEN_BACKLOG = 1024
# A connection turned away at the door gets this long to send the request it is answered on.
REFUSED_READ_TIMEOUT_S = 5.0
# Lingering close: how long and how much we read of what a client still sends after our final answer.
LINGER_S = 5.0
LINGER_MAX_BYTES = 2 * MAX_PAYLOAD_BYTES
# The quick lane handles one request at a time in a few milliseconds; it waits this long at most.
QUICK_QUEUE_WAIT_S = 5.0
MAX_REQUEST_LINE_BYTES = 65536
# The stdlib's default version for a request line without one; we answer nothing in that bare form.
HTTP_0_9 = "HTTP/0.9"
# A server built without settings (tests with a stub handler) gets the settings' defaults.
DEFAULT_MAX_CONNECTIONS: int = Settings.model_fields["local_max_connections"].default
DEFAULT_MAX_CONNECTIONS_PER_CLIENT: int = Settings.model_fields["local_max_connections_per_client"].default
# RFC 9110 section 5.6.2: a method is a token.
METHOD_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        *,
        queue_wait_s: float,
        handler: ProxyHandler | None = None,
        workers: int = 1,
        worker_target: WorkerTarget | None = None,
        access_log: Callable[[str], None] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_connections_per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        request_timeout_s: float = SOCKET_TIMEOUT_S,
    ) -> None:
        """`handler` given: that callable in this process, one event at a time per lane. Otherwise `workers`
        processes run `worker_target` (default: `lambda_handler`), one event each at a time."""
        self.invoker: Invoker = (
            SerialInvoker(handler, queue_wait_s=queue_wait_s)
            if handler is not None
            else LambdaContainers(workers, queue_wait_s=queue_wait_s, target=worker_target)
        )
        self.quick_invoker = SerialInvoker(
            handler or lambda_handler, queue_wait_s=max(queue_wait_s, QUICK_QUEUE_WAIT_S)
        )
        self.connections = ConnectionLimits(
            max_connections=max_connections, max_per_client=max_connections_per_client
        )
        self.request_timeout_s = request_timeout_s
        self.access_log = access_log
        try:
            super().__init__(address, _RequestHandler)
        except BaseException:
            self.invoker.close()
            raise

    @classmethod
    def for_settings(
        cls,
        address: tuple[str, int],
        settings: Settings,
        *,
        access_log: Callable[[str], None] | None = None,
    ) -> LocalApiServer:
        """What `make run` serves: `lambda_handler` in `EXEC_LOCAL_MAX_CONCURRENCY` worker processes."""
        return cls(
            address,
            queue_wait_s=settings.local_queue_wait_s,
            workers=settings.local_max_concurrency,
            access_log=access_log,
            max_connections=settings.local_max_connections,
            max_connections_per_client=settings.local_max_connections_per_client,
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        return f"http://{host!s}:{port}"

    @property
    def in_flight(self) -> int:
        """Requests holding a run container right now."""
        return self.invoker.in_flight.count

    def wait_until_in_flight(self, count: int, *, timeout_s: float) -> bool:
        return self.invoker.in_flight.wait_until(count, timeout_s=timeout_s)

    def warm(self) -> None:
        """Start the worker processes now (imports, service), so the first requests do not pay for it."""
        self.invoker.warm()

    def server_close(self) -> None:
        """Close the socket, then stop the workers (none is left running when this returns)."""
        super().server_close()
        self.invoker.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-response is routine; anything else keeps the stdlib's report."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Every connection ends with a lingering close: unread bytes must not turn our answer into a reset."""
        if isinstance(request, socket.socket):
            close_gracefully(request, linger_s=LINGER_S, max_drain_bytes=LINGER_MAX_BYTES)
        else:
            super().shutdown_request(request)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        quick = (event["httpMethod"], event["path"]) in QUICK_ROUTES
        return (self.quick_invoker if quick else self.invoker).invoke(event)


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    refusal: HttpError | None = None
    # The status line and headers, then the body, are separate writes: with Nagle's algorithm the body
    # waits for the client's delayed ACK of the headers (40 ms on Linux) on every kept-alive request.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout_s)

    def handle(self) -> None:
        """Serve the connection's requests, or answer its first one with the refusal decided at the door."""
        client = self.client_address[0]
        self.refusal = self.server.connections.open(client)
        try:
            if self.refusal is None:
                super().handle()
            else:
                self.connection.settimeout(REFUSED_READ_TIMEOUT_S)
                self.handle_one_request()
        finally:
            self.server.connections.close(client)

    def handle_one_request(self) -> None:
        """The stdlib's request cycle, except that every method token is served (the router decides)."""
        self.command, self.path = "", ""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE_BYTES + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE_BYTES:
                self.requestline, self.request_version = "", ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # it has answered through send_error
                return
            if self.request_version == HTTP_0_9:
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
                return
            # A header line without a colon ends the stdlib's header parsing early (a defect): what followed,
            # Content-Length included, would be read as the body or as a next request.
            if not METHOD_TOKEN.fullmatch(self.command) or self.headers.defects:
                self.send_error(HTTPStatus.BAD_REQUEST)
                return
            self._serve()
            self.wfile.flush()
        except TimeoutError:
            # Waiting for a next request on an idle kept-alive connection ends here: nothing to answer.
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the stdlib answers in HTML, in the API's JSON error shape; the connection closes after it."""
        del message, explain  # fixed messages: the offending request line is never echoed
        if self.request_version == HTTP_0_9:
            # The stdlib reads a request line it cannot parse as HTTP/0.9, which has no status line.
            self.request_version = self.protocol_version
        self._answer(errors.http_layer_error(code), started_s=time.monotonic())

    def _serve(self) -> None:
        started_s = time.monotonic()
        rejection = self.refusal or self._reject_unread()
        if rejection is not None:
            self._answer(rejection, started_s=started_s)
            return
        length_bytes = self._content_length() or 0
        try:
            body = self.rfile.read(length_bytes) if length_bytes else b""
        except TimeoutError:
            self._answer(errors.http_layer_error(HTTPStatus.REQUEST_TIMEOUT), started_s=started_s)
            return
        if len(body) < length_bytes:
            self._answer(errors.body_incomplete(len(body), length_bytes), started_s=started_s)
            return
        event = build_event(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        self._respond(*response_parts(self.server.invoke(event)), started_s=started_s)

    def _reject_unread(self) -> HttpError | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return errors.length_required()
        if len(self.headers.get_all("Content-Length", [])) > 1:
            return errors.invalid_content_length()
        length = self._content_length()
        if length is None:
            return errors.invalid_content_length()
        if length > MAX_PAYLOAD_BYTES:
            return errors.body_too_large(length, MAX_PAYLOAD_BYTES)
        return None

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length", "0").strip() or "0"
        if not (raw.isascii() and raw.isdigit()):  # "²" is a digit to str.isdigit, not to int()
            return None
        return int(raw)

    def _answer(self, error: HttpError, *, started_s: float) -> None:
        """An answer decided here, not by the handler; the request may be unread, so the connection closes."""
        self.close_connection = True
        self._respond(*response_parts(proxy_response(error)), started_s=started_s)

    def _respond(self, status: int, headers: list[tuple[str, str]], body: bytes, *, started_s: float) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self.server.access_log is not None:
            elapsed_s = time.monotonic() - started_s
            self.server.access_log(
                f'{self.client_address[0]} "{self.command} {self.path}" {status} {elapsed_s:.3f}s'
            )

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Silenced: `_respond` writes one access line per answer through `server.access_log`."""
