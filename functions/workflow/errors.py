"""What a task raises: an exception whose class name is the error's workflow name.

Lambda reports an unhandled exception as `{"errorType": <class name>, "errorMessage": <message>}` and Step
Functions matches Retry and Catch on errorType, so each error code of the service gets a class named
`error_name(code)` (`BackendUnavailable`, `InvalidRequest`, ...). The retried ones are listed in
`functions.core.workflow.RETRY_RULES`; the others fail the execution at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from pydantic import ValidationError

from functions.api.errors import validation_failed
from functions.core.errors import INTERNAL_ERROR_CODE, ExecutionError, InvalidRequestError, error_name

logger = logging.getLogger(__name__)


class WorkflowTaskError(Exception):
    """Base of the named task errors; never raised itself."""


@cache
def error_class(error_code: str) -> type[WorkflowTaskError]:
    """The exception class whose name is the workflow name of `error_code` (one class per code)."""
    name = error_name(error_code)
    return type(name, (WorkflowTaskError,), {"__module__": __name__, "__qualname__": name})


@contextmanager
def named_errors() -> Iterator[None]:
    """Turn whatever the service raises into a named task error; a bug becomes `InternalError`."""
    try:
        yield
    except ValidationError as exc:
        message = validation_failed([dict(error) for error in exc.errors()]).message
        raise error_class(InvalidRequestError.error_code)(message) from exc
    except ExecutionError as exc:
        raise error_class(exc.error_code)(exc.message) from exc
    except Exception as exc:
        logger.exception("workflow task failed")
        raise error_class(INTERNAL_ERROR_CODE)(f"the task failed unexpectedly: {type(exc).__name__}") from exc
