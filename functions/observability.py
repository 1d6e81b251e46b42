"""Structured logs and CloudWatch metrics (powertools), set up once per container.

Logs: JSON lines with the service name and, per invocation, the API Gateway request id as correlation id.
Metrics: `Executions` (count) and `ExecutionTime` (ms) by language and verdict, `Errors` by error code,
published as one CloudWatch EMF line on stdout when the handler returns (`publish_metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from functions.core.models import ExecuteResponse
from functions.settings import get_settings

_settings = get_settings()

logger = Logger(service=_settings.service_name, level=_settings.log_level)
metrics = Metrics(namespace=_settings.metrics_namespace, service=_settings.service_name)


P = ParamSpec("P")
R = TypeVar("R")


class _MetricsSwitch:
    """EMF lines only mean something inside Lambda, where CloudWatch Logs turns them into metrics."""

    enabled = True


def set_metrics_enabled(enabled: bool) -> None:  # noqa: FBT001 - a switch is its own best name
    """Off for the local server and the CLI: nothing collects EMF there and it clutters stdout."""
    _MetricsSwitch.enabled = enabled


def metrics_enabled() -> bool:
    return _MetricsSwitch.enabled


def quiet_logs() -> None:
    """For a person at a terminal: only warnings and errors from the service's own logger."""
    logger.setLevel(logging.WARNING)


def record_execution(response: ExecuteResponse) -> None:
    if not _MetricsSwitch.enabled:
        return
    metrics.add_dimension(name="language", value=response.language)
    metrics.add_dimension(name="verdict", value=response.verdict.value)
    metrics.add_metric(name="Executions", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="ExecutionTime", unit=MetricUnit.Milliseconds, value=round(response.execution_time * 1000, 3)
    )


def record_error(error_code: str) -> None:
    if not _MetricsSwitch.enabled:
        return
    metrics.add_dimension(name="error", value=error_code)
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)


def publish_metrics(handler: Callable[P, R]) -> Callable[P, R]:
    """Flush the invocation's metrics when the handler returns or raises.

    Like powertools' `log_metrics`, minus its warning on every invocation that recorded nothing
    (GET /health, GET /languages): those simply publish nothing.
    """

    @wraps(handler)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return wrapper
