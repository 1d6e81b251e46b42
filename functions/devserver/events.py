"""The local server's two conversions: an HTTP request -> an API Gateway REST proxy event (payload 1.0), and
a proxy response -> HTTP status, headers and body bytes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

STAGE = "local"
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
        "requestContext": _request_context(
            method=method,
            path=path,
            resource=resource,
            headers=single_headers,
            source_ip=source_ip,
            request_id=request_id,
            now=now,
        ),
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def _request_context(
    *,
    method: str,
    path: str,
    resource: str,
    headers: dict[str, str],
    source_ip: str,
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The event's requestContext: API Gateway's view of the caller and of the request."""
    return {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": _header(headers, "host") or "localhost",
        "extendedRequestId": request_id,
        "httpMethod": method.upper(),
        "identity": {
            "sourceIp": source_ip,
            "userAgent": _header(headers, "user-agent"),
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
