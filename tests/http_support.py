"""Helpers shared by the API tests: one response type for both paths (handler call and real HTTP)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from functions.devserver.server import response_parts

HTTP_TIMEOUT_S = 60  # a hung server fails the test instead of hanging the suite


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def from_proxy(proxy: dict[str, Any]) -> ApiResponse:
    status, headers, body = response_parts(proxy)
    return ApiResponse(status, {name.lower(): value for name, value in headers}, body)


def encode_body(body: bytes | str | dict[str, Any] | list[Any] | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def http_call(
    base_url: str,
    method: str,
    path: str,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> ApiResponse:
    """One real HTTP request with urllib; error statuses are returned, not raised."""
    data = encode_body(body)
    all_headers = {"Content-Type": "application/json"} if data else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(  # noqa: S310 - the URL is the test server's
        base_url + path, data=data or None, method=method, headers=all_headers
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            return ApiResponse(response.status, _lower(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return ApiResponse(error.code, _lower(error.headers.items()), error.read())


def _lower(items: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in items}
