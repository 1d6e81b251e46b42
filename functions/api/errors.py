"""The one error -> HTTP table: every error response is built here.

Body: `{"error": "<code>", "message": "<sentence>"}` (+ `execution_id` for 504). Never a stack trace.
The one other shape is Judge0's 422 under /judge0: `{"<field>": ["<reason>", ...], ...}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from functions.core.errors import (
    BackendUnavailableError,
    CapacityExhaustedError,
    DeadlineExceededError,
    ExecutionError,
    IdempotencyKeyReusedError,
    InvalidFieldsError,
    InvalidRequestError,
    LanguageUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    PermanentError,
    TooManyRequestsError,
    TransientError,
)

# Most specific first is not needed: lookup walks the exception's MRO, so a subclass finds its own row
# before its parent's.
STATUS_BY_ERROR: dict[type[ExecutionError], HTTPStatus] = {
    InvalidFieldsError: HTTPStatus.UNPROCESSABLE_ENTITY,  # Judge0's answer to a submission it refuses
    InvalidRequestError: HTTPStatus.BAD_REQUEST,  # includes UnknownLanguageError
    PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    LanguageUnavailableError: HTTPStatus.NOT_IMPLEMENTED,  # retrying cannot help: no toolchain here
    NotFoundError: HTTPStatus.NOT_FOUND,
    IdempotencyKeyReusedError: HTTPStatus.UNPROCESSABLE_ENTITY,  # the Idempotency-Key draft's answer
    PermanentError: HTTPStatus.BAD_REQUEST,
    CapacityExhaustedError: HTTPStatus.SERVICE_UNAVAILABLE,
    TooManyRequestsError: HTTPStatus.TOO_MANY_REQUESTS,
    BackendUnavailableError: HTTPStatus.BAD_GATEWAY,
    DeadlineExceededError: HTTPStatus.GATEWAY_TIMEOUT,
    TransientError: HTTPStatus.SERVICE_UNAVAILABLE,
}

# Sent when a capacity error does not say when to come back.
DEFAULT_RETRY_AFTER_S = 1
# Every answer with one of these statuses says when to come back (Retry-After).
RETRY_AFTER_STATUSES = frozenset({HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS})

# Error codes of failures that never reach the core.
INVALID_JSON = "invalid_json"
INVALID_REQUEST = "invalid_request"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
INTERNAL_ERROR = "internal_error"
INVALID_FIELDS = InvalidFieldsError.error_code
MALFORMED_REQUEST = "malformed_request"
REQUEST_TIMEOUT = "request_timeout"
LENGTH_REQUIRED = "length_required"

# What an HTTP server refuses before there is a request to route (RFC 9110/9112), in the error shape. The
# messages are fixed: the offending request line is never echoed back.
HTTP_LAYER_ERRORS: dict[HTTPStatus, tuple[str, str]] = {
    HTTPStatus.BAD_REQUEST: (MALFORMED_REQUEST, "the request line or a header is malformed"),
    HTTPStatus.REQUEST_URI_TOO_LONG: ("uri_too_long", "the request line is too long"),
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: (
        "headers_too_large",
        "a header line is too long, or there are too many headers",
    ),
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: ("http_version_not_supported", "send HTTP/1.1 (or 1.0)"),
    HTTPStatus.REQUEST_TIMEOUT: (REQUEST_TIMEOUT, "the request did not arrive in time"),
}


@dataclass(frozen=True, slots=True)
class HttpError:
    status: HTTPStatus
    error: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    execution_id: str | None = None
    # Judge0's 422: the body is this map (field -> reasons) instead of the error and message.
    fields: Mapping[str, Sequence[str]] | None = None

    def body(self) -> dict[str, Any]:
        if self.fields is not None:
            return {name: list(reasons) for name, reasons in self.fields.items()}
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.execution_id is not None:
            body["execution_id"] = self.execution_id
        return body


def from_execution_error(exc: ExecutionError) -> HttpError:
    status = next(
        (STATUS_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in STATUS_BY_ERROR),
        HTTPStatus.INTERNAL_SERVER_ERROR,
    )
    if status is HTTPStatus.INTERNAL_SERVER_ERROR:
        return internal_error()
    headers: dict[str, str] = {}
    if status in RETRY_AFTER_STATUSES:
        retry_after_s = exc.retry_after_s if isinstance(exc, TransientError) else None
        headers["Retry-After"] = str(retry_after_s or DEFAULT_RETRY_AFTER_S)
    execution_id = exc.execution_id if isinstance(exc, DeadlineExceededError) else None
    fields = exc.problems if isinstance(exc, InvalidFieldsError) else None
    return HttpError(
        status, exc.error_code, exc.message, headers=headers, execution_id=execution_id, fields=fields
    )


def invalid_json(detail: str) -> HttpError:
    return HttpError(HTTPStatus.BAD_REQUEST, INVALID_JSON, f"the request body is not valid JSON ({detail})")


def validation_failed(errors: Sequence[dict[str, Any]]) -> HttpError:
    """A readable sentence listing every offending field path; never the offending values."""
    problems = "; ".join(_describe(error) for error in errors) or "the request is invalid"
    return HttpError(HTTPStatus.BAD_REQUEST, INVALID_REQUEST, f"invalid request: {problems}")


def fields_invalid(errors: Sequence[dict[str, Any]]) -> HttpError:
    """Judge0's 422 for a body that fails validation: every offending field with its reasons."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        fields.setdefault(field_path(error.get("loc", ())), []).append(_reason(error))
    message = "; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in fields.items())
    return HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, INVALID_FIELDS, message, fields=fields)


def body_not_text(detail: str) -> HttpError:
    """JSON is UTF-8 text (RFC 8259): a body that is not cannot be a request."""
    return HttpError(
        HTTPStatus.BAD_REQUEST, INVALID_JSON, f"the request body must be JSON in UTF-8; {detail}"
    )


def not_found(path: str) -> HttpError:
    return HttpError(HTTPStatus.NOT_FOUND, NOT_FOUND, f"no such path: {path}")


def method_not_allowed(method: str, path: str, allowed: Sequence[str]) -> HttpError:
    allow = ", ".join(allowed)
    return HttpError(
        HTTPStatus.METHOD_NOT_ALLOWED,
        METHOD_NOT_ALLOWED,
        f"{method} is not allowed on {path}; use {allow}",
        headers={"Allow": allow},
    )


def body_too_large(size_bytes: int, limit_bytes: int) -> HttpError:
    return HttpError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        PAYLOAD_TOO_LARGE,
        f"the request body is {size_bytes} bytes; the limit is {limit_bytes}",
    )


def http_layer_error(status: int) -> HttpError:
    """An HTTP-level refusal (malformed request line, oversize headers...); a status without a row is a 400."""
    known = next((row for row in HTTP_LAYER_ERRORS if row == status), HTTPStatus.BAD_REQUEST)
    code, message = HTTP_LAYER_ERRORS[known]
    return HttpError(known, code, message)


def length_required() -> HttpError:
    return HttpError(
        HTTPStatus.LENGTH_REQUIRED, LENGTH_REQUIRED, "send the body with a Content-Length header"
    )


def invalid_content_length() -> HttpError:
    return HttpError(HTTPStatus.BAD_REQUEST, INVALID_REQUEST, "the Content-Length header is invalid")


def body_incomplete(received_bytes: int, length_bytes: int) -> HttpError:
    return HttpError(
        HTTPStatus.BAD_REQUEST,
        MALFORMED_REQUEST,
        f"the body ended after {received_bytes} of the {length_bytes} bytes its Content-Length announced",
    )


def unsupported_media_type(content_type: str) -> HttpError:
    return HttpError(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        UNSUPPORTED_MEDIA_TYPE,
        f"the body must be JSON (Content-Type: application/json), not {content_type}",
    )


def internal_error() -> HttpError:
    return HttpError(
        HTTPStatus.INTERNAL_SERVER_ERROR, INTERNAL_ERROR, "the service failed unexpectedly; this is a bug"
    )


def _describe(error: dict[str, Any]) -> str:
    location = field_path(error.get("loc", ()))
    kind = str(error.get("type", ""))
    if kind == "extra_forbidden":
        return f"{location}: unknown field"
    if kind == "missing" and location == "body":
        return "body: a JSON object is required"
    if kind == "model_attributes_type" and location == "body":
        return "body: must be a JSON object"
    return f"{location}: {_message(error)}"


def _reason(error: dict[str, Any]) -> str:
    """One reason of a Judge0 422, in Judge0's words where it has some."""
    kind = str(error.get("type", ""))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "can't be blank"
    return _message(error)


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg") or error.get("type") or "invalid value")
    return f"{message[:1].lower()}{message[1:]}"


def field_path(location: Sequence[object]) -> str:
    """('body', 'test_cases', 0, 'stdin') -> 'test_cases[0].stdin'; the body itself is 'body'."""
    parts = list(location)
    if parts[:1] == ["body"] and len(parts) > 1:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"
