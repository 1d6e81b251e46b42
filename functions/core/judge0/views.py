"""A run or an execution -> a submission as Judge0 answers it: its fields, the requested ones, base64.

The service keeps results, not requests: a submission answers the fields of its result (`KEPT_FIELDS`,
what `*` means here); the request's own fields (source_code, stdin, language_id, the limits...) are
answered null when asked for by name.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from functions.core.errors import InvalidRequestError, NotFoundError
from functions.core.executions import CANCELLED_ERROR, ExecutionState, ExecutionView
from functions.core.judge0.statuses import DESCRIPTIONS, Status, outcome_of
from functions.core.models import ExecuteResponse
from functions.core.verdicts import Verdict

ALL_FIELDS = "*"
# Judge0 CE 1.13.1's submission attributes (what `fields` may name).
AVAILABLE_FIELDS = (
    "source_code", "language_id", "stdin", "expected_output", "stdout", "status_id", "created_at",
    "finished_at", "time", "memory", "stderr", "token", "number_of_runs", "cpu_time_limit", "cpu_extra_time",
    "wall_time_limit", "memory_limit", "stack_limit", "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit",
    "max_file_size", "compile_output", "exit_code", "exit_signal", "message", "wall_time", "compiler_options",
    "command_line_arguments", "redirect_stderr_to_stdout", "callback_url", "additional_files",
    "enable_network", "status", "language",
)  # fmt: skip
DEFAULT_FIELDS = ("token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status")
KEPT_FIELDS = (
    *DEFAULT_FIELDS, "status_id", "wall_time", "exit_code", "exit_signal", "created_at", "finished_at",
)  # fmt: skip
# Text fields sent in base64 with base64_encoded=true (Judge0 encodes `message` too).
ENCODED_FIELDS = frozenset({"stdout", "stderr", "compile_output", "message"})
CANCELLED_MESSAGE = "the submission was cancelled (DELETE)"

Values = dict[str, Any]


def requested_fields(fields: str | None) -> tuple[str, ...]:
    """`fields` as Judge0 reads it: names separated by commas, `*` for every kept one, empty: the default."""
    names = [name.strip() for name in (fields or "").split(",") if name.strip()]
    unknown = [name for name in names if name != ALL_FIELDS and name not in AVAILABLE_FIELDS]
    if unknown:
        raise InvalidRequestError(f"invalid fields: [{', '.join(unknown)}]", field="fields")
    if ALL_FIELDS in names:
        return KEPT_FIELDS
    return tuple(dict.fromkeys(names)) or DEFAULT_FIELDS


def render(values: Values, fields: tuple[str, ...], *, base64_encoded: bool) -> Values:
    return {
        name: _encoded(values.get(name), encode=base64_encoded and name in ENCODED_FIELDS) for name in fields
    }


def run_values(
    response: ExecuteResponse, *, execution_id: str, created_at: datetime, finished_at: datetime
) -> Values:
    """The submission of a finished run (`execution_id` names it: the run's, or its execution's)."""
    outcome = outcome_of(response)
    ran = response.verdict not in (Verdict.COMPILATION_ERROR, Verdict.INTERNAL_ERROR)
    return {
        **_status(outcome.status),
        "token": token_of(execution_id),
        "stdout": (response.stdout or None) if ran else None,
        "stderr": (response.stderr or None) if ran else None,
        "compile_output": response.compile_output or None,
        "message": outcome.message,
        "time": f"{response.cpu_time:.3f}" if ran else None,
        "wall_time": f"{response.execution_time:.3f}" if ran else None,
        "memory": response.memory_kb if ran else None,
        "exit_code": outcome.exit_code,
        "exit_signal": outcome.exit_signal,
        "created_at": timestamp(created_at),
        "finished_at": timestamp(finished_at),
    }


def execution_values(view: ExecutionView) -> Values:
    if view.state is ExecutionState.SUCCEEDED and view.result is not None:
        return run_values(
            view.result,
            execution_id=view.execution_id,
            created_at=view.created_at,
            finished_at=view.finished_at or view.created_at,
        )
    values = {"token": token_of(view.execution_id), "created_at": timestamp(view.created_at)}
    if view.state is ExecutionState.RUNNING:
        return {**values, **_status(Status.PROCESSING)}
    cancelled = view.error is not None and view.error.error == CANCELLED_ERROR
    message = CANCELLED_MESSAGE if cancelled or view.error is None else view.error.message
    ended = None if view.finished_at is None else timestamp(view.finished_at)
    return {**values, **_status(Status.INTERNAL_ERROR), "message": message, "finished_at": ended}


def token_of(execution_id: str) -> str:
    """An execution id (32 hex digits) as a Judge0 token: the same 128 bits in the UUID form."""
    return str(uuid.UUID(hex=execution_id))


def execution_id_of(token: str) -> str:
    """The execution id a token names (the UUID form, or the 32 digits themselves); NotFoundError else."""
    try:
        return uuid.UUID(token.strip()).hex
    except ValueError:
        raise NotFoundError(f"no submission {token[:80]!r}") from None


def timestamp(moment: datetime) -> str:
    """Judge0's (Rails') form: UTC with milliseconds, `2024-05-01T12:00:00.123Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _status(status: Status) -> Values:
    return {"status": {"id": int(status), "description": DESCRIPTIONS[status]}, "status_id": int(status)}


def _encoded(value: object, *, encode: bool) -> object:
    if encode and isinstance(value, str):
        return base64.b64encode(value.encode("utf-8")).decode("ascii")
    return value
