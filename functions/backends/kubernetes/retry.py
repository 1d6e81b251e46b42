"""Kubernetes API errors -> our error taxonomy, and bounded exponential backoff for the transient ones."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from functions.core.errors import BackendUnavailableError, CapacityExhaustedError

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
HTTP_CONFLICT = 409
HTTP_NOT_FOUND = 404
HTTP_GONE = 410
HTTP_FORBIDDEN = 403


class ApiErrorKind(StrEnum):
    QUOTA = "quota"  # 403 "exceeded quota": the namespace is full -> 503 + Retry-After
    TRANSIENT = "transient"  # 429, 5xx, connection trouble: retry with backoff
    CONFLICT = "conflict"  # 409: the object exists (a retried create)
    NOT_FOUND = "not_found"
    GONE = "gone"  # 410: a watch's resourceVersion is too old: list again
    PERMANENT = "permanent"  # RBAC, validation, bad credentials: retrying changes nothing


_KIND_BY_STATUS = {
    HTTP_CONFLICT: ApiErrorKind.CONFLICT,
    HTTP_NOT_FOUND: ApiErrorKind.NOT_FOUND,
    HTTP_GONE: ApiErrorKind.GONE,
}

# Connection refused/reset, read timeouts and a stream cut mid-body all arrive as one of these.
NETWORK_ERRORS: tuple[type[Exception], ...] = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
# Everything a Kubernetes API call may raise that `classify` understands.
API_ERRORS: tuple[type[Exception], ...] = (ApiException, *NETWORK_ERRORS)


def classify(exc: Exception) -> ApiErrorKind:
    if isinstance(exc, ApiException):
        status = exc.status or 0
        if status == HTTP_FORBIDDEN and "exceeded quota" in f"{exc.reason} {exc.body}":
            return ApiErrorKind.QUOTA
        if status in TRANSIENT_STATUSES:
            return ApiErrorKind.TRANSIENT
        return _KIND_BY_STATUS.get(status, ApiErrorKind.PERMANENT)
    if isinstance(exc, NETWORK_ERRORS):
        return ApiErrorKind.TRANSIENT
    return ApiErrorKind.PERMANENT


def describe(exc: Exception) -> str:
    """For API callers: a connection error's text names the cluster's host and port, so only its type."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason or ''}".strip()
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    base_backoff_s: float = 0.2
    max_backoff_s: float = 2.0
    quota_retry_after_s: int = 5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def backoff_s(self, attempt: int, exc: Exception) -> float:
        """Exponential with jitter, capped; a server's Retry-After (429) is honoured up to the cap."""
        retry_after = _retry_after_s(exc)
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        ceiling = min(self.max_backoff_s, self.base_backoff_s * 2.0 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    def error_for(self, operation: str, exc: Exception) -> Exception:
        """Our error for a vendor error that will not be retried (any more)."""
        if classify(exc) is ApiErrorKind.QUOTA:
            return CapacityExhaustedError(
                "the runner namespace's quota is full; try again shortly",
                retry_after_s=self.quota_retry_after_s,
            )
        logger.warning("Kubernetes API call failed", extra={"operation": operation, "error": str(exc)[:500]})
        return BackendUnavailableError(f"Kubernetes API call {operation} failed: {describe(exc)}")

    def call(
        self,
        operation: str,
        request: Callable[[], T],
        *,
        deadline: float | None = None,
        passthrough: frozenset[ApiErrorKind] = frozenset(),
    ) -> T:
        """Run `request`, retrying transient failures; never sleeps past `deadline` (monotonic).

        Errors of a kind in `passthrough` (say 409 on create) reach the caller as the vendor exception.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return request()
            except API_ERRORS as exc:
                if classify(exc) in passthrough:
                    raise
                delay_s = self.backoff_s(attempt, exc)
                out_of_time = deadline is not None and self.clock() + delay_s >= deadline
                if classify(exc) is not ApiErrorKind.TRANSIENT or attempt >= self.max_attempts or out_of_time:
                    raise self.error_for(operation, exc) from exc
                logger.warning(
                    "retrying Kubernetes API call",
                    extra={"operation": operation, "attempt": attempt, "error": str(exc)[:500]},
                )
                self.sleep(delay_s)


def _retry_after_s(exc: Exception) -> float | None:
    headers = getattr(exc, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
