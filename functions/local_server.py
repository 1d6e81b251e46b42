"""`make run`: a stdlib HTTP server that turns each request into an API Gateway REST proxy event (payload
1.0), has it handled as Lambda would, and turns the proxy response back into HTTP.

The HTTP front is threaded; the handler runs behind an invoker (`functions.local_lambda`). By default that is
`LambdaContainers`: N worker processes (N = `EXEC_LOCAL_MAX_CONCURRENCY`), each one Lambda container that
calls `functions.api.handler.lambda_handler` one event at a time, so N requests (and N sandboxes) run at once.
Processes, because powertools' resolver keeps the current event in class-level state: two invocations in
one process would read each other's requests. A request that cannot get a container within
`EXEC_LOCAL_QUEUE_WAIT_S` is answered 503 + Retry-After; one whose worker process dies is answered 502
`backend_unavailable` and the worker is replaced. Closing the server stops every worker. A test that injects
its own `handler` callable gets the in-process mode instead (`SerialInvoker`: one lock, one event at a time).
"""

from __future__ import annotations

import base64
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from functions.api.errors import HttpError, body_too_large
from functions.api.handler import proxy_response
from functions.local_lambda import Invoker, LocalLambdaContext, ProxyHandler, SerialInvoker
from functions.local_workers import LambdaContainers, WorkerTarget
from functions.settings import Settings

# LocalLambdaContext lives in functions.local_lambda; tests and the bench import it from here.
__all__ = ["MAX_PAYLOAD_BYTES", "LocalApiServer", "LocalLambdaContext", "build_event", "response_parts"]

STAGE = "local"
# API Gateway refuses payloads above 10 MB before invoking anything; so do we, without reading them.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
SOCKET_TIMEOUT_S = 60.0
HOP_BY_HOP_HEADERS = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})


def build_event(
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0) for one HTTP request.

    The API is modelled as a `/{proxy+}` resource on stage `local` behind a custom domain, so paths carry
    no stage prefix (which is also what keeps Swagger UI's base path at `/`).
    """
    request_id = request_id or str(uuid.uuid4())
    now = now or datetime.now(tz=UTC)
    split = urlsplit(target)
    path = unquote(split.path) or "/"
    multi_headers = _group(headers)
    multi_query = _group(parse_qsl(split.query, keep_blank_values=True))
    text_body, is_base64 = _event_body(body)
    single_headers = {name: values[-1] for name, values in multi_headers.items()}
    resource = "/" if path == "/" else "/{proxy+}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None if path == "/" else {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": _header(single_headers, "host") or "localhost",
            "extendedRequestId": request_id,
            "httpMethod": method.upper(),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": _header(single_headers, "user-agent"),
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "user": None,
                "userArn": None,
            },
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": STAGE,
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def response_parts(proxy: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """A proxy response -> (status, headers, body bytes), merging `headers` and `multiValueHeaders`."""
    merged: dict[str, list[str]] = {
        name: [str(v) for v in values] for name, values in _items(proxy, "multiValueHeaders")
    }
    for name, value in _items(proxy, "headers"):
        merged.setdefault(name, [str(value)])
    headers = [
        (name, value)
        for name, values in merged.items()
        if name.lower() not in HOP_BY_HOP_HEADERS
        for value in values
    ]
    raw_body = proxy.get("body") or ""
    body = base64.b64decode(raw_body) if proxy.get("isBase64Encoded") else str(raw_body).encode("utf-8")
    return int(proxy["statusCode"]), headers, body


class LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        queue_wait_s: float,
        handler: ProxyHandler | None = None,
        workers: int = 1,
        worker_target: WorkerTarget | None = None,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        """`handler` given: that callable in this process, one event at a time. Otherwise `workers`
        processes run `worker_target` (default: `lambda_handler`), one event each at a time."""
        self.invoker: Invoker = (
            SerialInvoker(handler, queue_wait_s=queue_wait_s)
            if handler is not None
            else LambdaContainers(workers, queue_wait_s=queue_wait_s, target=worker_target)
        )
        try:
            super().__init__(address, _RequestHandler)
        except BaseException:
            self.invoker.close()
            raise
        self.access_log = access_log

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
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        return f"http://{host!s}:{port}"

    @property
    def in_flight(self) -> int:
        """Requests holding a container right now."""
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

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.invoker.invoke(event)


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started_s = time.monotonic()
        rejection = self._reject_unread()
        if rejection is not None:
            self.close_connection = True
            status, headers, body = response_parts(proxy_response(rejection))
        else:
            event = build_event(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=self._read_body(),
                source_ip=self.client_address[0],
            )
            status, headers, body = response_parts(self.server.invoke(event))
        self._write(status, headers, body)
        if self.server.access_log is not None:
            elapsed_s = time.monotonic() - started_s
            self.server.access_log(
                f'{self.client_address[0]} "{self.command} {self.path}" {status} {elapsed_s:.3f}s'
            )

    def _reject_unread(self) -> HttpError | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return HttpError(
                HTTPStatus.LENGTH_REQUIRED, "length_required", "send the body with a Content-Length header"
            )
        length = self._content_length()
        if length is None:
            return HttpError(
                HTTPStatus.BAD_REQUEST, "invalid_request", "the Content-Length header is invalid"
            )
        if length > MAX_PAYLOAD_BYTES:
            return body_too_large(length, MAX_PAYLOAD_BYTES)
        return None

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length", "0").strip() or "0"
        if not raw.isdigit():
            return None
        return int(raw)

    def _read_body(self) -> bytes:
        length = self._content_length() or 0
        return self.rfile.read(length) if length else b""

    def _write(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Silenced: `_serve` writes one access line per request through `server.access_log`."""


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _event_body(body: bytes) -> tuple[str | None, bool]:
    """API Gateway passes text through and base64-encodes what it treats as binary."""
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _items(proxy: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    value = proxy.get(key) or {}
    return list(value.items())
