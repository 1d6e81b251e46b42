"""What the /executions routes read from the API Gateway event: who calls, and where the API lives."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent


def caller_identity(event: APIGatewayProxyEvent) -> str:
    """Who sent the request, as API Gateway authenticated it (API key id, or the IAM caller's ARN); empty
    when nothing authenticated it (`make run`). Idempotency keys are scoped by it."""
    identity = event.request_context.identity
    return identity.api_key_id or identity.user_arn or ""


def status_url(event: APIGatewayProxyEvent, execution_id: str) -> str:
    """The absolute URL of GET /executions/{execution_id}, as the client reached this API.

    `requestContext.path` is the path the client used (with the stage, on an execute-api host); the
    event's `path` is the route's: what precedes the route is the API's base path.
    """
    scheme = event.headers.get("X-Forwarded-Proto") or event.headers.get("x-forwarded-proto") or "http"
    host = event.request_context.domain_name or event.headers.get("Host") or "localhost"
    full_path = event.request_context.path or event.path
    base_path = full_path[: -len(event.path)] if full_path.endswith(event.path) else ""
    return f"{scheme}://{host}{base_path}/executions/{execution_id}"
