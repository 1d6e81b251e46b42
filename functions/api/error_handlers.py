"""Every exception a request can raise -> one JSON error response from the table in `errors`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from functions import observability
from functions.api import errors
from functions.api.errors import HttpError
from functions.core.errors import ExecutionError, TransientError
from functions.observability import logger


def to_response(error: HttpError) -> Response[str]:
    observability.record_error(error.error)
    return Response(
        status_code=int(error.status),
        content_type="application/json",
        body=json.dumps(error.body()),
        headers=dict(error.headers),
    )


def register_error_handlers(
    app: APIGatewayRestResolver,
    allowed_methods: Mapping[str, Sequence[str]],
    *,
    field_error_prefix: str | None = None,
) -> None:
    """Install the handlers on `app`; `allowed_methods` (path -> methods) turns a wrong method into a 405.
    Under `field_error_prefix` a body that fails validation is answered in Judge0's 422 shape."""

    def _invalid_request(exc: RequestValidationError) -> Response[str]:
        problems = list(exc.errors())
        json_problem = next((problem for problem in problems if problem.get("type") == "json_invalid"), None)
        if json_problem is not None:
            return to_response(errors.invalid_json(_json_problem(json_problem)))
        if _fields_answered(app.current_event.path, problems, field_error_prefix):
            return to_response(errors.fields_invalid(problems))
        return to_response(errors.validation_failed(problems))

    def _too_deep(_exc: RecursionError) -> Response[str]:
        # json.loads recurses once per nesting level: a body of 100k '[' fails here, not in pydantic.
        return to_response(errors.invalid_json("nested too deeply"))

    def _unsupported_media_type(_exc: RequestUnsupportedContentType) -> Response[str]:
        content_type = app.current_event.headers.get("content-type", "")
        return to_response(errors.unsupported_media_type(content_type))

    def _execution_error(exc: ExecutionError) -> Response[str]:
        error = errors.from_execution_error(exc)
        if isinstance(exc, TransientError):
            logger.warning("request not served", extra={"error": error.error, "reason": exc.message})
        else:
            logger.info("request refused", extra={"error": error.error, "reason": exc.message})
        return to_response(error)

    def _no_route(_exc: RouteNotFoundError) -> Response[str]:
        method = app.current_event.http_method.upper()
        path = app.current_event.path
        allowed = _allowed(allowed_methods, path)
        # An allowed method that found no route had a segment its route does not accept: no such resource.
        if allowed and method not in allowed:
            return to_response(errors.method_not_allowed(method, path, allowed))
        return to_response(errors.not_found(path))

    # Registered by call, not as decorators: powertools' decorator is untyped.
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(RecursionError)(_too_deep)
    app.exception_handler(RequestUnsupportedContentType)(_unsupported_media_type)
    app.exception_handler(ExecutionError)(_execution_error)
    app.not_found(_no_route)
    app.exception_handler(Exception)(bug_response)


def _fields_answered(path: str, problems: Sequence[Mapping[str, object]], prefix: str | None) -> bool:
    """Judge0 answers 422 for its body's fields; a bad query or path parameter stays a 400."""
    if prefix is None or not path.startswith(prefix):
        return False
    return all(_in_body(problem) for problem in problems)


def _in_body(problem: Mapping[str, object]) -> bool:
    location = problem.get("loc")
    return isinstance(location, tuple | list) and bool(location) and location[0] == "body"


def bug_response(exc: Exception) -> Response[str]:
    """A 500: the stack trace goes to the logs only; the caller learns nothing about the internals."""
    log_bug(exc)
    return to_response(errors.internal_error())


def log_bug(exc: Exception) -> None:
    logger.exception("unhandled error", exc_info=exc, extra={"error_type": type(exc).__name__})


def _allowed(allowed_methods: Mapping[str, Sequence[str]], path: str) -> Sequence[str] | None:
    """The methods of `path`: its own entry, or a template's whose braced segments stand for any one segment."""
    if path in allowed_methods:
        return allowed_methods[path]
    segments = path.split("/")
    for template, methods in allowed_methods.items():
        pattern = template.split("/")
        if len(pattern) == len(segments) and all(
            part == segment or (part.startswith("{") and part.endswith("}") and segment)
            for part, segment in zip(pattern, segments, strict=True)
        ):
            return methods
    return None


def _json_problem(problem: Mapping[str, object]) -> str:
    context = problem.get("ctx")
    reason = str(context.get("error", "")) if isinstance(context, Mapping) else ""
    location = problem.get("loc")
    position = location[-1] if isinstance(location, tuple | list) and location else None
    if isinstance(position, int):
        return f"{reason or 'syntax error'} at character {position}"
    return reason or "syntax error"
