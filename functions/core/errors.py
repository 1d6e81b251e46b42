"""Error taxonomy: permanent errors are the caller's fault and never retried; transient ones may be.

The HTTP mapping lives in one table in `functions.api.errors`. In a workflow an error travels by name,
`error_name(error_code)` (`backend_unavailable` -> `BackendUnavailable`); the state machine retries the
transient names listed in `functions.core.workflow`.
"""

from __future__ import annotations

# A failure no rule of ours explains (a bug, or an error of the platform itself).
INTERNAL_ERROR_CODE = "internal_error"


class ExecutionError(Exception):
    """Base of every error the service raises on purpose."""

    error_code = "execution_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentError(ExecutionError):
    """The request cannot succeed as sent; retrying it changes nothing."""

    error_code = "invalid_request"


class InvalidRequestError(PermanentError):
    """A field is malformed, unknown or outside its allowed range; `field` names it when one field is at
    fault (a path in the /execute body: `code`, `timeout`, `test_cases[0].stdin`)."""

    error_code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownLanguageError(InvalidRequestError):
    error_code = "unknown_language"


class InvalidFieldsError(InvalidRequestError):
    """Several fields at fault at once, each with its reasons (field path -> sentences)."""

    error_code = "invalid_fields"

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{name}: {', '.join(reasons)}" for name, reasons in problems.items()))
        self.problems = problems


class LanguageUnavailableError(PermanentError):
    """The language is known, but this deployment has no toolchain for it."""

    error_code = "language_unavailable"


class PayloadTooLargeError(PermanentError):
    """Code or stdin is larger than its cap."""

    error_code = "payload_too_large"


class NotFoundError(PermanentError):
    error_code = "not_found"


class IdempotencyKeyReusedError(PermanentError):
    """An Idempotency-Key already named an execution of a different request."""

    error_code = "idempotency_key_reused"


class TransientError(ExecutionError):
    """The service could not run the request now; the same request may succeed later."""

    error_code = "transient_error"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CapacityExhaustedError(TransientError):
    """No free slot: the worker pool or the namespace quota is full."""

    error_code = "capacity_exhausted"


class TooManyRequestsError(TransientError):
    """This caller holds more of the service at once than one caller may; others are still served."""

    error_code = "too_many_requests"


class BackendUnavailableError(TransientError):
    """The execution backend failed (API errors after retries, image pull failure)."""

    error_code = "backend_unavailable"


class DeadlineExceededError(TransientError):
    """The run did not finish inside the synchronous budget."""

    error_code = "deadline_exceeded"

    def __init__(self, message: str, *, execution_id: str) -> None:
        super().__init__(message)
        self.execution_id = execution_id


def error_name(error_code: str) -> str:
    """The name an error has in a workflow (Step Functions `Error`): `payload_too_large` -> `PayloadTooLarge`."""
    return "".join(part.capitalize() for part in error_code.split("_"))


def error_code_for_name(name: str) -> str | None:
    """The error code of a workflow error name this service raises, else None."""
    return _CODES_BY_NAME.get(name)


def _error_classes(cls: type[ExecutionError]) -> list[type[ExecutionError]]:
    return [cls, *(found for sub in cls.__subclasses__() for found in _error_classes(sub))]


_CODES_BY_NAME = {
    error_name(code): code
    for code in {cls.error_code for cls in _error_classes(ExecutionError)} | {INTERNAL_ERROR_CODE}
}
