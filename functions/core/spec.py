"""Turn a validated request body into a runner task: decode, check sizes, apply defaults and ceilings."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

from functions.core.errors import InvalidRequestError, PayloadTooLargeError
from functions.core.judging import JudgingPlan
from functions.core.languages import LanguageRegistry, LanguageSpec
from functions.core.models import Encoding, ExecuteRequest
from functions.core.output_digest import normalized_sha256
from functions.core.protocol import RunnerTask, TaskCase, TaskLimits, b64encode
from functions.core.steps import compile_step, run_step, source_file_name


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """Defaults and ceilings for one entry point (synchronous or asynchronous)."""

    default_timeout_s: float
    max_timeout_s: float
    compile_timeout_s: float
    total_budget_s: float
    default_memory_limit_mb: int
    min_memory_limit_mb: int
    max_memory_limit_mb: int
    max_code_bytes: int
    max_stdin_bytes: int
    output_limit_bytes: int
    max_test_cases: int
    max_args: int
    max_arg_bytes: int
    max_processes: int
    max_file_size_bytes: int


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """What the sandbox gets (`task`) and what stays with the judge (`plan`: expected outputs' digests)."""

    task: RunnerTask
    plan: JudgingPlan


def new_execution_id() -> str:
    return uuid.uuid4().hex


def prepare_run(
    request: ExecuteRequest,
    registry: LanguageRegistry,
    policy: LimitPolicy,
    *,
    execution_id: str | None = None,
) -> PreparedRun:
    """Validate `request` against `policy`; raises PermanentError subclasses for anything it refuses.

    `execution_id` names the run when the caller has one already (an asynchronous execution); else a new
    one is made."""
    language = registry.get(request.language)
    source = _source(request, policy)
    pairs = _cases(request, policy)
    timeout_s, memory_limit_mb = _timeout_and_memory(request, policy)
    file_name = source_file_name(language, source)
    task = RunnerTask(
        execution_id=execution_id or new_execution_id(),
        language=language,
        source_file_name=file_name,
        source_b64=b64encode(source),
        compile=compile_step(
            language, file_name=file_name, memory_limit_mb=memory_limit_mb, timeout_s=policy.compile_timeout_s
        ),
        run=run_step(
            language,
            file_name=file_name,
            memory_limit_mb=memory_limit_mb,
            timeout_s=timeout_s,
            args=_args(request.args, policy),
            merge_stderr=request.merge_stderr,
        ),
        env=dict(language.env),
        cases=tuple(TaskCase(stdin_b64=b64encode(stdin)) for stdin, _expected in pairs),
        limits=TaskLimits(
            total_budget_s=max(policy.total_budget_s, timeout_s),
            output_limit_bytes=policy.output_limit_bytes,
            max_processes=policy.max_processes,
            max_file_size_bytes=policy.max_file_size_bytes,
        ),
    )
    expected = tuple(None if output is None else normalized_sha256(output) for _stdin, output in pairs)
    plan = judging_plan(task, expected, include_test_results=request.test_cases is not None)
    return PreparedRun(task=task, plan=plan)


def judging_plan(
    task: RunnerTask, expected_sha256: tuple[str | None, ...], *, include_test_results: bool
) -> JudgingPlan:
    language: LanguageSpec = task.language
    return JudgingPlan(
        execution_id=task.execution_id,
        language=language.name,
        compiled=task.compile is not None,
        memory_error_patterns=language.memory_error_patterns,
        timeout_s=task.run.timeout_s,
        compile_timeout_s=task.compile.timeout_s if task.compile is not None else task.run.timeout_s,
        output_limit_bytes=task.limits.output_limit_bytes,
        expected_sha256=expected_sha256,
        include_test_results=include_test_results,
        language_version=language.version,
    )


def _source(request: ExecuteRequest, policy: LimitPolicy) -> bytes:
    source = _decode(request.code, request.encoding, "code")
    if len(source) > policy.max_code_bytes:
        raise PayloadTooLargeError(f"code is {len(source)} bytes; the limit is {policy.max_code_bytes}")
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("code must be UTF-8 text", field="code") from exc
    if not source.strip():
        raise InvalidRequestError("code is empty", field="code")
    return source


def _utf8(value: str, field: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # JSON can carry "\ud800"; an unpaired surrogate has no UTF-8 form.
        raise InvalidRequestError(
            f"{field} is not valid Unicode (unpaired surrogate escape)", field=field
        ) from exc


def _decode(value: str, encoding: Encoding, field: str) -> bytes:
    if encoding is Encoding.TEXT:
        return _utf8(value, field)
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidRequestError(
            f"{field} is not valid base64 (send encoding: text for plain text)", field=field
        ) from exc


def _cases(request: ExecuteRequest, policy: LimitPolicy) -> list[tuple[bytes, bytes | None]]:
    """(stdin, expected output) of every case, decoded and size-checked."""
    pairs: list[tuple[bytes, bytes | None]]
    if request.test_cases is None:
        pairs = [(_decode(request.stdin, request.encoding, "stdin"), None)]
    else:
        if request.stdin:
            raise InvalidRequestError(
                "send stdin inside each test case, not beside test_cases", field="stdin"
            )
        if len(request.test_cases) > policy.max_test_cases:
            raise InvalidRequestError(
                f"{len(request.test_cases)} test cases; at most {policy.max_test_cases} are allowed",
                field="test_cases",
            )
        pairs = [
            (
                _decode(case.stdin, request.encoding, f"test_cases[{index}].stdin"),
                None
                if case.expected_output is None
                else _decode(case.expected_output, request.encoding, f"test_cases[{index}].expected_output"),
            )
            for index, case in enumerate(request.test_cases)
        ]
    total_input_bytes = sum(len(stdin) + len(expected or b"") for stdin, expected in pairs)
    if total_input_bytes > policy.max_stdin_bytes:
        raise PayloadTooLargeError(
            f"stdin (with expected output, over all test cases) is {total_input_bytes} bytes; "
            f"the limit is {policy.max_stdin_bytes}"
        )
    return pairs


def _args(args: list[str], policy: LimitPolicy) -> tuple[str, ...]:
    if len(args) > policy.max_args:
        raise InvalidRequestError(f"{len(args)} args; at most {policy.max_args} are allowed", field="args")
    for index, arg in enumerate(args):
        if "\x00" in arg:
            raise InvalidRequestError("args must not contain NUL characters", field="args")
        if len(_utf8(arg, f"args[{index}]")) > policy.max_arg_bytes:
            raise InvalidRequestError(
                f"an argument is longer than {policy.max_arg_bytes} bytes", field="args"
            )
    return tuple(args)


def _timeout_and_memory(request: ExecuteRequest, policy: LimitPolicy) -> tuple[float, int]:
    timeout_s = policy.default_timeout_s if request.timeout is None else request.timeout
    if timeout_s > policy.max_timeout_s:
        raise InvalidRequestError(
            f"timeout {timeout_s:g} s is above the ceiling of {policy.max_timeout_s:g} s", field="timeout"
        )
    memory_limit_mb = (
        policy.default_memory_limit_mb if request.memory_limit_mb is None else request.memory_limit_mb
    )
    if not policy.min_memory_limit_mb <= memory_limit_mb <= policy.max_memory_limit_mb:
        raise InvalidRequestError(
            f"memory_limit_mb {memory_limit_mb} is outside "
            f"{policy.min_memory_limit_mb}..{policy.max_memory_limit_mb}",
            field="memory_limit_mb",
        )
    return timeout_s, memory_limit_mb
