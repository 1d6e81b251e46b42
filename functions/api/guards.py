"""Checks on the raw API Gateway event, before anything parses the body.

A body far beyond the code and stdin caps is refused unread (413); a body that is not JSON gets a 415
instead of being form-decoded into confusing field errors; a body that is not UTF-8 text (which JSON must
be) gets a 400 here, because the resolver's own decoding would fail with an exception instead.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from functions.api.errors import HttpError, body_not_text, body_too_large, unsupported_media_type
from functions.settings import Settings

BODY_OVERHEAD_BYTES = 64 * 1024  # the other fields, JSON punctuation, whitespace
JSON_MEDIA_TYPE = "application/json"


def max_body_bytes(settings: Settings) -> int:
    """Largest body that can still be a valid request.

    base64 inflates code and stdin by 4/3; `encoding: text` with JSON escapes can inflate ordinary text
    up to 3x (a 2-byte character as a 6-character \\uXXXX escape). Anything larger is refused unread.
    """
    return 3 * (settings.max_code_bytes + settings.max_stdin_bytes) + BODY_OVERHEAD_BYTES


def reject_before_parsing(event: Mapping[str, Any], settings: Settings) -> HttpError | None:
    body = event.get("body")
    if not body:
        return None
    size_bytes = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body)
    limit_bytes = max_body_bytes(settings)
    if size_bytes > limit_bytes:
        return body_too_large(size_bytes, limit_bytes)
    content_type = header(event, "content-type")
    if content_type is not None and media_type(content_type) != JSON_MEDIA_TYPE:
        return unsupported_media_type(content_type)
    if event.get("isBase64Encoded"):
        return _reject_binary(str(body))
    return None


def _reject_binary(body_b64: str) -> HttpError | None:
    """API Gateway base64-encodes a body it does not treat as text: it must still decode to UTF-8."""
    try:
        base64.b64decode(body_b64, validate=True).decode("utf-8")
    except binascii.Error:
        return body_not_text("it is marked base64-encoded but is not valid base64")
    except UnicodeDecodeError as exc:
        return body_not_text(f"byte {exc.start} is not valid UTF-8")
    return None


def header(event: Mapping[str, Any], name: str) -> str | None:
    """Case-insensitive header lookup over `headers` then `multiValueHeaders` (last value wins)."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and value is not None:
            return str(value)
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and values:
            return str(values[-1])
    return None


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def with_lowercase_media_type(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with its Content-Type's media type in lower case: media types are case-insensitive, but the
    resolver compares them as written (`APPLICATION/JSON` would be a 415 after this guard accepted it)."""

    def lowered(name: str, value: Any) -> Any:
        if name.lower() != "content-type" or not isinstance(value, str):
            return value
        media, separator, parameters = value.partition(";")
        return media.strip().lower() + separator + parameters

    result = dict(event)
    if event.get("headers"):
        result["headers"] = {name: lowered(name, value) for name, value in event["headers"].items()}
    if event.get("multiValueHeaders"):
        result["multiValueHeaders"] = {
            name: [lowered(name, value) for value in values] if isinstance(values, list) else values
            for name, values in event["multiValueHeaders"].items()
        }
    return result
