"""A Judge0 submission -> an /execute request, and the core's refusals -> Judge0's 422 (field -> reasons).

Every rule of a run stays the core's (`functions.core.spec`): this module only renames, converts units and
refuses what Judge0 offers and this service does not do, naming the field and the reason.
"""

from __future__ import annotations

import base64
import binascii
import math
import shlex
from collections import defaultdict
from dataclasses import dataclass

from functions.core.errors import InvalidFieldsError, InvalidRequestError
from functions.core.judge0.models import SubmissionRequest
from functions.core.languages import LanguageRegistry
from functions.core.models import Encoding, ExecuteRequest, TestCaseRequest

KB_PER_MB = 1024
TIME_LIMIT_FIELDS = ("cpu_time_limit", "wall_time_limit")
ENCODED_REQUEST_FIELDS = ("source_code", "stdin", "expected_output")
# Judge0 fields this service does not offer: the values that ask for nothing more than what it does
# anyway (null always does), and why any other value is refused.
UNSUPPORTED: dict[str, tuple[tuple[object, ...], str]] = {
    "compiler_options": (
        ("",),
        "compiler options are not supported: each language compiles with fixed flags",
    ),
    "additional_files": (("",), "additional files are not supported: a submission is its source_code"),
    "cpu_extra_time": ((0,), "extra time is not supported: the time limit is where the program is stopped"),
    "stack_limit": ((), "a stack limit is not supported: the memory limit bounds the stack"),
    "max_processes_and_or_threads": ((), "not supported: the service's own process limit applies"),
    "enable_per_process_and_thread_time_limit": (
        (False,),
        "per-process time limits are not supported: the limit covers the program's processes together",
    ),
    "enable_per_process_and_thread_memory_limit": (
        (False,),
        "per-process memory limits are not supported: the limit covers the program's processes together",
    ),
    "max_file_size": ((), "not supported: the service's own file size limit applies"),
    "enable_network": ((False,), "programs never have network access"),
    "number_of_runs": ((1,), "only 1 is supported: each submission runs once"),
    "callback_url": (("",), "callbacks are not supported: poll GET /submissions/{token} instead"),
}
# A refusal of the core names an /execute field; its Judge0 name (the time limit's depends on the request).
_JUDGE0_NAMES = {
    "code": "source_code",
    "stdin": "stdin",
    "test_cases[0].stdin": "stdin",
    "test_cases[0].expected_output": "expected_output",
    "memory_limit_mb": "memory_limit",
}
_ARGS_FIELD = "args"


@dataclass(frozen=True, slots=True)
class Translated:
    request: ExecuteRequest
    time_limit_field: str  # the Judge0 field the run's timeout came from


def to_execute_request(
    submission: SubmissionRequest, *, base64_encoded: bool, registry: LanguageRegistry
) -> Translated:
    """The /execute request of `submission`; InvalidFieldsError with every problem found."""
    problems: dict[str, list[str]] = defaultdict(list)
    for name, (accepted, reason) in UNSUPPORTED.items():
        value = getattr(submission, name)
        if value is not None and value not in accepted:
            problems[name].append(reason)
    language = registry.by_judge0_id(submission.language_id)
    if language is None:
        problems["language_id"].append(f"language with id {submission.language_id} doesn't exist")
    texts = {name: getattr(submission, name) for name in ENCODED_REQUEST_FIELDS}
    if base64_encoded:
        texts = {name: _compact_base64(value, name, problems) for name, value in texts.items()}
    args = _words(submission.command_line_arguments, problems)
    if problems or language is None:
        raise InvalidFieldsError(dict(problems))
    time_limit_field, timeout_s = _time_limit(submission)
    expected_output = texts["expected_output"]
    stdin = texts["stdin"] or ""
    request = ExecuteRequest(
        language=language.name,
        code=texts["source_code"] or "",
        encoding=Encoding.BASE64 if base64_encoded else Encoding.TEXT,
        stdin="" if expected_output is not None else stdin,
        test_cases=None
        if expected_output is None
        else [TestCaseRequest(stdin=stdin, expected_output=expected_output)],
        timeout=timeout_s,
        memory_limit_mb=None
        if submission.memory_limit is None
        else math.ceil(submission.memory_limit / KB_PER_MB),
        args=args,
        merge_stderr=bool(submission.redirect_stderr_to_stdout),
    )
    return Translated(request=request, time_limit_field=time_limit_field)


def refusal_of(exc: InvalidRequestError, translated: Translated, *, prefix: str = "") -> InvalidRequestError:
    """The core's refusal of one field, under the field's Judge0 name; any other refusal as it is."""
    if exc.field is None or isinstance(exc, InvalidFieldsError):
        return exc
    if exc.field == "timeout":
        name = translated.time_limit_field
    elif exc.field.startswith(_ARGS_FIELD):
        name = "command_line_arguments"
    else:
        name = _JUDGE0_NAMES.get(exc.field, exc.field)
    return InvalidFieldsError({prefix + name: [exc.message]})


def prefixed(exc: InvalidFieldsError, prefix: str) -> dict[str, list[str]]:
    return {prefix + name: reasons for name, reasons in exc.problems.items()}


def _time_limit(submission: SubmissionRequest) -> tuple[str, float | None]:
    """The smaller of the two limits, and which one it is (the default's name is wall_time_limit)."""
    given: dict[str, float] = {
        name: value for name in TIME_LIMIT_FIELDS if (value := getattr(submission, name)) is not None
    }
    if not given:
        return "wall_time_limit", None
    name = min(given, key=lambda field: given[field])
    return name, float(given[name])


def _compact_base64(value: str | None, name: str, problems: dict[str, list[str]]) -> str | None:
    """Base64 as Judge0 clients send it (line breaks allowed); refused when it does not decode."""
    if value is None:
        return None
    compact = "".join(value.split())
    try:
        base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        problems[name].append("is not valid base64 (base64_encoded=true)")
    return compact


def _words(command_line: str | None, problems: dict[str, list[str]]) -> list[str]:
    if not command_line:
        return []
    try:
        return shlex.split(command_line)
    except ValueError as exc:
        problems["command_line_arguments"].append(f"cannot be split into arguments: {exc}")
        return []
