"""The /judge0 routes: Judge0 CE 1.13.1's API on this service. Each handler: parse -> one call -> model.

Query flags are `true` or `false` (Judge0 reads anything but `true` as false; a typo here is a 400, not a
silent false). `fields` names submission attributes separated by commas, `*` for every one kept.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import RootModel

from functions import wiring
from functions.api.executions import caller_identity
from functions.core.judge0.models import (
    MAX_BATCH_SIZE,
    About,
    BatchRequest,
    BatchView,
    ConfigInfo,
    LanguageDetail,
    LanguageEntry,
    StatusEntry,
    SubmissionRequest,
    SubmissionView,
    TokenResponse,
)
from functions.core.judge0.service import SubmitOptions
from functions.core.judge0.views import ALL_FIELDS, AVAILABLE_FIELDS
from functions.core.models import ErrorResponse
from functions.observability import logger

PREFIX = "/judge0"
# The paths (for 405 + Allow) and the read-only ones the local server answers in its own process.
METHODS: dict[str, tuple[str, ...]] = {
    f"{PREFIX}/about": ("GET",),
    f"{PREFIX}/config_info": ("GET",),
    f"{PREFIX}/languages": ("GET",),
    f"{PREFIX}/statuses": ("GET",),
    f"{PREFIX}/submissions": ("POST",),
    f"{PREFIX}/submissions/batch": ("GET", "POST"),
    f"{PREFIX}/languages/{{language_id}}": ("GET",),
    f"{PREFIX}/submissions/{{token}}": ("DELETE", "GET"),
}
READ_ONLY_PATHS = tuple(f"{PREFIX}/{name}" for name in ("about", "config_info", "languages", "statuses"))

_FIELD = "|".join(re.escape(name) for name in (ALL_FIELDS, *AVAILABLE_FIELDS))
_UUID_PATTERN = "[0-9A-Fa-f-]{32,36}"

Flag = Literal["true", "false"]
Base64Encoded = Annotated[
    Flag | None, Query(description="true: source_code, stdin, expected_output, stdout, stderr, "
    "compile_output and message are base64")
]  # fmt: skip
Fields = Annotated[
    str | None,
    Query(
        pattern=f"^(({_FIELD})(,({_FIELD}))*)?$",
        description="Attributes to answer, separated by commas; * answers every attribute this service keeps "
        "(its results, not the request). Absent or empty: token, time, memory, stdout, stderr, "
        "compile_output, message, status",
    ),
]
Tokens = Annotated[
    str,
    Query(
        pattern=f"^{_UUID_PATTERN}(,{_UUID_PATTERN}){{0,{MAX_BATCH_SIZE - 1}}}$",
        description=f"1 to {MAX_BATCH_SIZE} tokens separated by commas",
    ),
]


class FieldErrors(RootModel[dict[str, list[str]]]):
    """Judge0's 422: each refused field (`submissions[i].<field>` in a batch) with its reasons."""


router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # powertools leaves its __init__ untyped


def _flag(value: Flag | None) -> bool:
    return value == "true"


def _answers(*statuses: HTTPStatus) -> dict[int, OpenAPIResponse]:
    answers: dict[int, OpenAPIResponse] = {}
    for status in statuses:
        model = FieldErrors if status is HTTPStatus.UNPROCESSABLE_ENTITY else ErrorResponse
        answers[int(status)] = {
            "description": status.phrase,
            "content": {"application/json": {"model": model}},
        }
    return answers


BUSY = (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE)


def _ok(description: str, *statuses: HTTPStatus) -> dict[int, OpenAPIResponse]:
    """A read: 200 with the route's model, or one of `statuses`, or busy."""
    return {200: {"description": description}, **_answers(*statuses, *BUSY)}


REFUSED = (
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
)


@router.get("/about", summary="Judge0: the version this API answers as", responses=_ok("About this API"))
def about() -> About:
    return wiring.get_judge0().about()


@router.get(
    "/config_info",
    summary="Judge0: the limits and features, in Judge0's terms",
    responses=_ok("The configuration"),
)
def config_info() -> ConfigInfo:
    return wiring.get_judge0().config_info()


@router.get(
    "/languages", summary="Judge0: the language ids this server runs", responses=_ok("Every id it runs")
)
def languages() -> list[LanguageEntry]:
    return wiring.get_judge0().languages()


@router.get(
    "/languages/<language_id>",
    summary="Judge0: one language id (is_archived: this server has no toolchain for it)",
    responses=_ok("The language", HTTPStatus.NOT_FOUND),
)
def language(language_id: str) -> LanguageDetail:
    return wiring.get_judge0().language(language_id)


@router.get("/statuses", summary="Judge0: every submission status", responses=_ok("Every status"))
def statuses() -> list[StatusEntry]:
    return wiring.get_judge0().statuses()


@router.post(
    "/submissions",
    summary="Judge0: create a submission (wait=true: run it and answer it; else: its token)",
    responses={
        201: {
            "description": "wait=false: {token}; wait=true: the finished submission (its fields)",
            "content": {"application/json": {"model": SubmissionView}},
        },
        **_answers(
            *REFUSED, HTTPStatus.NOT_IMPLEMENTED, HTTPStatus.BAD_GATEWAY, HTTPStatus.GATEWAY_TIMEOUT, *BUSY
        ),
    },
)
def create_submission(
    submission: SubmissionRequest,
    base64_encoded: Base64Encoded = None,
    wait: Annotated[Flag | None, Query(description="true: answer once the run is done")] = None,
    fields: Fields = None,
) -> Response[dict[str, Any]]:
    options = SubmitOptions(base64_encoded=_flag(base64_encoded), wait=_flag(wait), fields=fields)
    remaining_s = router.lambda_context.get_remaining_time_in_millis() / 1000
    answer = wiring.get_judge0().create(
        submission, options, caller=caller_identity(router.current_event), caller_remaining_s=remaining_s
    )
    logger.info("judge0 submission", extra={"token": answer.get("token"), "wait": options.wait})
    return Response(status_code=HTTPStatus.CREATED, content_type="application/json", body=answer)


@router.post(
    "/submissions/batch",
    summary=f"Judge0: create 1 to {MAX_BATCH_SIZE} submissions (all or none: one refused refuses the batch)",
    responses={
        201: {
            "description": "Each one's token",
            "content": {"application/json": {"model": list[TokenResponse]}},
        },
        **_answers(*REFUSED, HTTPStatus.BAD_GATEWAY, *BUSY),
    },
)
def create_batch(batch: BatchRequest, base64_encoded: Base64Encoded = None) -> Response[list[dict[str, Any]]]:
    answer = wiring.get_judge0().create_batch(
        batch, base64_encoded=_flag(base64_encoded), caller=caller_identity(router.current_event)
    )
    return Response(status_code=HTTPStatus.CREATED, content_type="application/json", body=answer)


@router.get(
    "/submissions/batch",
    summary="Judge0: several submissions by token (null for a token that names none)",
    responses={
        200: {"description": "In the order asked", "content": {"application/json": {"model": BatchView}}},
        **_answers(HTTPStatus.BAD_REQUEST, HTTPStatus.BAD_GATEWAY, *BUSY),
    },
)
def get_batch(tokens: Tokens, base64_encoded: Base64Encoded = None, fields: Fields = None) -> dict[str, Any]:
    found = wiring.get_judge0().get_batch(tokens, base64_encoded=_flag(base64_encoded), fields=fields)
    return {"submissions": found}


@router.get(
    "/submissions/<token>",
    summary="Judge0: a submission (wait=false ones: a wait=true submission is not kept)",
    responses={
        200: {"description": "The submission", "content": {"application/json": {"model": SubmissionView}}},
        **_answers(HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND, HTTPStatus.BAD_GATEWAY, *BUSY),
    },
)
def get_submission(token: str, base64_encoded: Base64Encoded = None, fields: Fields = None) -> dict[str, Any]:
    return wiring.get_judge0().get(token, base64_encoded=_flag(base64_encoded), fields=fields)


@router.delete(
    "/submissions/<token>",
    summary="Judge0: cancel a submission still running (nothing is erased); answered in base64",
    responses={
        200: {
            "description": "The submission after the cancel",
            "content": {"application/json": {"model": SubmissionView}},
        },
        **_answers(HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND, HTTPStatus.BAD_GATEWAY, *BUSY),
    },
)
def delete_submission(token: str, fields: Fields = None) -> dict[str, Any]:
    return wiring.get_judge0().delete(token, fields=fields)
