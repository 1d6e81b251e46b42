"""Lambda entry point behind API Gateway (REST, proxy integration); the local server calls it too."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.error_handlers import log_bug
from functions.api.errors import HttpError, internal_error
from functions.api.guards import reject_before_parsing, with_lowercase_media_type
from functions.api.routes import app
from functions.observability import logger, publish_metrics, record_error
from functions.settings import get_settings


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@publish_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejection = reject_before_parsing(event, get_settings())
    if rejection is not None:
        logger.info("request refused", extra={"error": rejection.error, "reason": rejection.message})
        record_error(rejection.error)
        return proxy_response(rejection)
    try:
        return app.resolve(with_lowercase_media_type(event), context)
    except Exception as exc:  # noqa: BLE001 - an event the router cannot read still gets a JSON 500
        log_bug(exc)
        failure = internal_error()
        record_error(failure.error)
        return proxy_response(failure)


def proxy_response(error: HttpError) -> dict[str, Any]:
    """The API Gateway proxy response for an error decided outside the router."""
    headers = {
        "Content-Type": ["application/json"],
        **{name: [value] for name, value in error.headers.items()},
    }
    return {
        "statusCode": int(error.status),
        "multiValueHeaders": headers,
        "body": json.dumps(error.body()),
        "isBase64Encoded": False,
    }
