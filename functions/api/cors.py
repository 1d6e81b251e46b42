"""CORS for browser clients: one list of headers shared by the handler and the CDK API construct."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import CORSConfig

from functions.settings import Settings

# Headers a browser client may send: JSON bodies, the API key, SigV4 for IAM auth, POST /executions' key.
CORS_ALLOW_HEADERS = [
    "Content-Type",
    "X-Api-Key",
    "Authorization",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "Idempotency-Key",
]


def cors_config(settings: Settings) -> CORSConfig | None:
    """API Gateway answers preflights; real responses need the allow-origin header from the handler."""
    if not settings.cors_origins:
        return None
    first, *others = settings.cors_origins
    return CORSConfig(allow_origin=first, extra_origins=others, allow_headers=CORS_ALLOW_HEADERS, max_age=600)
