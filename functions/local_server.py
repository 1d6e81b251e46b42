"""`make run`: a stdlib HTTP server that turns each request into an API Gateway REST proxy event (payload
1.0) and calls the same `lambda_handler` that runs in Lambda, then turns its proxy response back into HTTP.

Like one Lambda container, it hands the handler one event at a time: powertools' resolver keeps the current
event in class-level state, so two concurrent invocations in one process would read each other's requests.
A request that cannot get the handler within `EXEC_LOCAL_QUEUE_WAIT_S` is answered 503 + Retry-After.
"""

from __future__ import annotations

import base64
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.errors import HttpError, body_too_large, from_execution_error
from functions.api.handler import proxy_response
from functions.core.errors import CapacityExhaustedError

ProxyHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

STAGE = "local"
FUNCTION_NAME = "code-exec-local"
# API Gateway refuses payloads above 10 MB before invoking anything; so do we, without reading them.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# API Gateway's default integration timeout is 29 s; the handler sees this as its remaining time.
INVOCATION_TIMEOUT_S = 29.0
SOCKET_TIMEOUT_S = 60.0
HOP_BY_HOP_HEADERS = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})


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
        handler: ProxyHandler,
        queue_wait_s: float,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.proxy_handler = handler
        self.queue_wait_s = queue_wait_s
        self.access_log = access_log
        self.invoke_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-response is routine; anything else keeps the stdlib's report."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the handler as one Lambda container would: one event at a time."""
        if not self.invoke_lock.acquire(timeout=self.queue_wait_s):
            return proxy_response(
                from_execution_error(
                    CapacityExhaustedError("the local server is busy with another request; retry shortly")
                )
            )
        try:
            context = LocalLambdaContext(request_id=event["requestContext"]["requestId"])
            return self.proxy_handler(event, context)
        finally:
            self.invoke_lock.release()


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
