"""Kubernetes API errors -> our taxonomy, and bounded retries of the transient ones (no real sleeping)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from functions.backends.kubernetes.retry import ApiErrorKind, RetryPolicy, classify
from functions.core.errors import BackendUnavailableError, CapacityExhaustedError

QUOTA_BODY = (
    '{"kind":"Status","status":"Failure","message":"jobs.batch \\"exec-1\\" is forbidden: exceeded quota: '
    'runner-quota, requested: count/jobs.batch=1, used: count/jobs.batch=50, limited: count/jobs.batch=50",'
    '"reason":"Forbidden","code":403}'
)


def api_error(status: int, body: str = "", headers: dict[str, str] | None = None) -> ApiException:
    error = ApiException(status=status, reason="Reason", body=body)
    error.headers = headers
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        pytest.param(api_error(403, QUOTA_BODY), ApiErrorKind.QUOTA, id="403-exceeded-quota"),
        pytest.param(
            api_error(403, '{"message":"cannot create jobs"}'), ApiErrorKind.PERMANENT, id="403-rbac"
        ),
        pytest.param(api_error(429), ApiErrorKind.TRANSIENT, id="429"),
        pytest.param(api_error(500), ApiErrorKind.TRANSIENT, id="500"),
        pytest.param(api_error(503), ApiErrorKind.TRANSIENT, id="503"),
        pytest.param(api_error(504), ApiErrorKind.TRANSIENT, id="504"),
        pytest.param(api_error(409), ApiErrorKind.CONFLICT, id="409"),
        pytest.param(api_error(404), ApiErrorKind.NOT_FOUND, id="404"),
        pytest.param(api_error(410), ApiErrorKind.GONE, id="410"),
        pytest.param(api_error(401), ApiErrorKind.PERMANENT, id="401"),
        pytest.param(api_error(422), ApiErrorKind.PERMANENT, id="422"),
        pytest.param(
            urllib3.exceptions.ProtocolError("Connection broken"), ApiErrorKind.TRANSIENT, id="dropped"
        ),
        pytest.param(urllib3.exceptions.TimeoutError("read timed out"), ApiErrorKind.TRANSIENT, id="timeout"),
        pytest.param(ConnectionRefusedError(), ApiErrorKind.TRANSIENT, id="refused"),
        pytest.param(ValueError("bug"), ApiErrorKind.PERMANENT, id="not-an-api-error"),
    ],
)
def test_classify(error: Exception, kind: ApiErrorKind) -> None:
    assert classify(error) is kind


class Script:
    """A callable that raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def policy(slept: list[float]) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=4, base_backoff_s=0.2, max_backoff_s=2.0, quota_retry_after_s=7, sleep=slept.append
    )


@pytest.mark.parametrize(
    "errors",
    [
        pytest.param([api_error(500)], id="one-500"),
        pytest.param([api_error(429), api_error(503)], id="429-then-503"),
        pytest.param([urllib3.exceptions.ProtocolError("reset"), api_error(502), api_error(504)], id="three"),
    ],
)
def test_transient_errors_are_retried_then_succeed(
    policy: RetryPolicy, slept: list[float], errors: list[Exception]
) -> None:
    # Given an API call that fails transiently a few times, fewer than the attempt bound
    call = Script(*errors)
    # When called through the retry policy
    result = policy.call("create job", call)
    # Then it succeeds, having backed off once per failure with growing, capped delays
    assert result == "ok"
    assert call.calls == len(errors) + 1
    assert len(slept) == len(errors)
    assert all(0 < delay <= 2.0 for delay in slept)


def test_backoff_grows_exponentially_and_is_capped(policy: RetryPolicy) -> None:
    ceilings = [min(2.0, 0.2 * 2**n) for n in range(6)]
    delays = [policy.backoff_s(attempt, api_error(500)) for attempt in range(1, 7)]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))


def test_retry_after_header_is_honoured_up_to_the_cap(policy: RetryPolicy) -> None:
    assert policy.backoff_s(1, api_error(429, headers={"Retry-After": "1"})) == 1.0
    assert policy.backoff_s(1, api_error(429, headers={"Retry-After": "60"})) == 2.0


def test_persistent_transient_error_becomes_backend_unavailable(
    policy: RetryPolicy, slept: list[float]
) -> None:
    # Given an API that answers 500 every time
    call = Script(*[api_error(500)] * 10)
    # When called
    with pytest.raises(BackendUnavailableError, match=r"create job.*500") as raised:
        policy.call("create job", call)
    # Then it gave up after the bounded number of attempts, keeping the vendor error as the cause
    assert call.calls == 4
    assert len(slept) == 3
    assert isinstance(raised.value.__cause__, ApiException)


def test_exceeded_quota_is_capacity_exhausted_with_retry_after(
    policy: RetryPolicy, slept: list[float]
) -> None:
    # Given a create rejected by the namespace's ResourceQuota
    call = Script(api_error(403, QUOTA_BODY))
    # When called
    with pytest.raises(CapacityExhaustedError) as raised:
        policy.call("create job", call)
    # Then the caller hears "no capacity, come back in N s" at once: no retry, no sleep
    assert raised.value.retry_after_s == 7
    assert (call.calls, slept) == (1, [])


@pytest.mark.parametrize("status", [401, 403, 422], ids=["401", "403-rbac", "422"])
def test_permanent_errors_are_not_retried(policy: RetryPolicy, slept: list[float], status: int) -> None:
    call = Script(api_error(status))
    with pytest.raises(BackendUnavailableError):
        policy.call("create job", call)
    assert (call.calls, slept) == (1, [])


def test_passthrough_kinds_reach_the_caller_unchanged(policy: RetryPolicy) -> None:
    # A 409 on create means an earlier attempt created the Job: the caller decides.
    with pytest.raises(ApiException) as raised:
        policy.call("create job", Script(api_error(409)), passthrough=frozenset({ApiErrorKind.CONFLICT}))
    assert raised.value.status == 409


def test_retries_never_sleep_past_the_deadline(slept: list[float]) -> None:
    # Given a clock 0.05 s before the deadline and a backoff longer than that
    now = {"t": 100.0}
    clock: Callable[[], float] = lambda: now["t"]  # noqa: E731
    policy = RetryPolicy(max_attempts=10, base_backoff_s=1.0, sleep=slept.append, clock=clock)
    # When the call fails transiently
    with pytest.raises(BackendUnavailableError):
        policy.call("read job", Script(api_error(503)), deadline=100.05)
    # Then it gives up instead of sleeping into the caller's budget
    assert slept == []


def test_error_carries_no_stack_or_body(policy: RetryPolicy) -> None:
    # The message reaches the HTTP client: status and reason only, never the API's response body.
    error: Any = policy.error_for("create job", api_error(500, body='{"secret":"x"}'))
    assert "secret" not in error.message
