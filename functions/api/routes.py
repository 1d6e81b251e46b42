"""The HTTP routes. Each handler: parse (powertools + pydantic) -> one service call -> model."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from functions import observability, wiring
from functions.api import judge0
from functions.api.cors import cors_config
from functions.api.error_handlers import register_error_handlers
from functions.api.executions import caller_identity, status_url
from functions.api.openapi import ApiResolver, Document, ServiceDescription
from functions.core.executions import MAX_IDEMPOTENCY_KEY_CHARS, ExecutionAccepted, ExecutionView
from functions.core.languages import load_registry
from functions.core.models import (
    ErrorResponse,
    ExecuteRequest,
    ExecuteResponse,
    HealthResponse,
    LanguageInfo,
)
from functions.observability import logger
from functions.settings import get_settings

API_TITLE = "code-exec"
API_VERSION = "1.0"
API_DESCRIPTION = (
    "Run source code in a fresh isolated sandbox and get stdout, stderr, exit code, time, memory and a "
    "verdict. GET /languages lists the languages this server runs."
)
SWAGGER_PATH = "/swagger"
OPENAPI_PATH = "/openapi.json"

# path -> methods, for the 405 answer (and its Allow header) to a known path with a wrong method; a segment
# in braces stands for any one segment.
ALLOWED_METHODS: dict[str, tuple[str, ...]] = {
    "/execute": ("POST",),
    "/executions": ("POST",),
    "/executions/{execution_id}": ("DELETE", "GET"),
    "/health": ("GET",),
    "/languages": ("GET",),
    OPENAPI_PATH: ("GET",),
    SWAGGER_PATH: ("GET",),
    **judge0.METHODS,
}

# (method, path) of the read-only routes that never start a run: the local server answers them without
# waiting for a run slot, so /health stays truthful while every slot is busy.
QUICK_ROUTES: frozenset[tuple[str, str]] = frozenset(
    ("GET", path) for path in ("/health", "/languages", OPENAPI_PATH, SWAGGER_PATH, *judge0.READ_ONLY_PATHS)
)


def _finish_document(document: Document) -> Document:
    settings = get_settings()
    description = ServiceDescription(
        registry=load_registry(settings.runners_dir),
        policy=wiring.sync_policy(settings),
        runners_dir=settings.runners_dir,
    )
    return description.finish(document)


app = ApiResolver(finish_document=_finish_document, enable_validation=True, cors=cors_config(get_settings()))
app.enable_swagger(path=SWAGGER_PATH, title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION)
register_error_handlers(app, ALLOWED_METHODS, field_error_prefix=judge0.PREFIX + "/")
app.include_router(judge0.router, prefix=judge0.PREFIX)


def _errors(*statuses: HTTPStatus) -> dict[int, OpenAPIResponse]:
    return {
        int(status): {
            "description": status.phrase,
            "content": {"application/json": {"model": ErrorResponse}},
        }
        for status in statuses
    }


@app.post(
    "/execute",
    summary="Run code synchronously",
    responses={
        200: {"description": "The run finished (whatever the verdict)"},
        **_errors(
            HTTPStatus.BAD_REQUEST,
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            HTTPStatus.TOO_MANY_REQUESTS,
            HTTPStatus.BAD_GATEWAY,
            HTTPStatus.SERVICE_UNAVAILABLE,
            HTTPStatus.GATEWAY_TIMEOUT,
        ),
    },
)
def execute(execute_request: ExecuteRequest) -> ExecuteResponse:
    remaining_s = app.lambda_context.get_remaining_time_in_millis() / 1000
    response = wiring.get_service().execute(execute_request, caller_remaining_s=remaining_s)
    observability.record_execution(response)
    logger.info(
        "execution finished",
        extra={
            "execution_id": response.execution_id,
            "language": response.language,
            "verdict": response.verdict.value,
            "execution_time_s": response.execution_time,
        },
    )
    return response


# A connection beyond the server's caps is refused on any route (the local server's; API Gateway throttles).
BUSY = (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE)


@app.post(
    "/executions",
    summary="Start an asynchronous run (the same body as /execute; timeout up to EXEC_MAX_ASYNC_TIMEOUT_S)",
    responses={
        202: {
            "description": "Started (or, with a known Idempotency-Key, the execution it started)",
            "content": {"application/json": {"model": ExecutionAccepted}},
        },
        **_errors(
            HTTPStatus.BAD_REQUEST,
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            HTTPStatus.UNPROCESSABLE_ENTITY,
            HTTPStatus.BAD_GATEWAY,
            HTTPStatus.SERVICE_UNAVAILABLE,
            HTTPStatus.TOO_MANY_REQUESTS,
        ),
    },
)
def start_execution(
    execute_request: ExecuteRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            description="A retried POST with the same key (and body) answers the same execution",
        ),
    ] = None,
) -> Response[ExecutionAccepted]:
    execution = wiring.get_executions().start(
        execute_request, idempotency_key=idempotency_key, caller=caller_identity(app.current_event)
    )
    url = status_url(app.current_event, execution.execution_id)
    logger.info("execution started", extra={"execution_id": execution.execution_id, "state": execution.state})
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type="application/json",
        body=ExecutionAccepted(execution_id=execution.execution_id, status_url=url),
        headers={"Location": url},
    )


@app.get(
    "/executions/<execution_id>",
    summary="An asynchronous run's state, and its /execute response once it SUCCEEDED",
    responses={
        200: {"description": "The execution"},
        **_errors(HTTPStatus.NOT_FOUND, HTTPStatus.BAD_GATEWAY, *BUSY),
    },
)
def describe_execution(execution_id: str) -> ExecutionView:
    return wiring.get_executions().describe(execution_id)


@app.delete(
    "/executions/<execution_id>",
    summary="Cancel an asynchronous run (its sandbox or Job is stopped); a finished one is left as it is",
    responses={
        200: {"description": "The execution after the cancel"},
        **_errors(HTTPStatus.NOT_FOUND, HTTPStatus.BAD_GATEWAY, *BUSY),
    },
)
def cancel_execution(execution_id: str) -> ExecutionView:
    execution = wiring.get_executions().cancel(execution_id)
    logger.info("execution cancelled", extra={"execution_id": execution_id, "state": execution.state})
    return execution


@app.get(
    "/health",
    summary="Liveness and the configured backend",
    responses={200: {"description": "The service is up"}, **_errors(*BUSY)},
)
def health() -> HealthResponse:
    return wiring.get_service().health()


@app.get(
    "/languages",
    summary="Supported languages, their aliases and toolchain versions",
    responses={200: {"description": "Every language the service runs"}, **_errors(*BUSY)},
)
def languages() -> list[LanguageInfo]:
    return wiring.get_service().languages()


@app.get(OPENAPI_PATH, include_in_schema=False)
def openapi() -> Response[str]:
    schema = app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION)
    return Response(status_code=200, content_type="application/json", body=schema)
