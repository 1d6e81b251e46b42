"""Judge0 submissions -> /execute requests, refusals -> Judge0's 422, results -> Judge0's fields (pure)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.core.errors import InvalidFieldsError, InvalidRequestError, NotFoundError
from functions.core.executions import CANCELLED_ERROR, ExecutionFailure, ExecutionState, ExecutionView
from functions.core.judge0.models import SubmissionRequest
from functions.core.judge0.submissions import UNSUPPORTED, Translated, refusal_of, to_execute_request
from functions.core.judge0.views import (
    DEFAULT_FIELDS,
    KEPT_FIELDS,
    execution_id_of,
    execution_values,
    render,
    requested_fields,
    timestamp,
    token_of,
)
from functions.core.models import Encoding
from tests.unit.factories import REGISTRY, response

EXECUTION_ID = "5f0c2a4e9b7d4c1e8a6f3b2d1c0e9f8a"
TOKEN = "5f0c2a4e-9b7d-4c1e-8a6f-3b2d1c0e9f8a"
CREATED = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)


def translate(base64_encoded: bool = False, **fields: Any) -> Translated:
    submission = SubmissionRequest.model_validate({"source_code": "print(1)", "language_id": 71, **fields})
    return to_execute_request(submission, base64_encoded=base64_encoded, registry=REGISTRY)


def problems(**fields: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidFieldsError) as caught:
        translate(**fields)
    return caught.value.problems


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- requests ------------------------------------------------------------------------------------------


def test_a_plain_submission_is_a_text_request_of_its_language() -> None:
    request = translate(stdin="1 2", language_id=92).request
    assert (request.language, request.encoding, request.code, request.stdin) == (
        "python",
        Encoding.TEXT,
        "print(1)",
        "1 2",
    )
    assert (request.test_cases, request.timeout, request.memory_limit_mb, request.args) == (
        None,
        None,
        None,
        [],
    )


def test_base64_fields_are_taken_with_line_breaks_as_judge0_clients_send_them() -> None:
    wrapped = b64("print(input())")[:8] + "\n" + b64("print(input())")[8:] + "\n"
    request = translate(base64_encoded=True, source_code=wrapped, stdin=b64("x")).request
    assert request.encoding is Encoding.BASE64
    assert base64.b64decode(request.code) == b"print(input())"
    assert request.stdin == b64("x")


def test_an_expected_output_makes_the_stdin_one_judged_case() -> None:
    request = translate(stdin="a", expected_output="A").request
    assert request.stdin == ""
    assert request.test_cases is not None
    assert [(case.stdin, case.expected_output) for case in request.test_cases] == [("a", "A")]


@pytest.mark.parametrize(
    ("fields", "timeout_s", "field"),
    [
        ({}, None, "wall_time_limit"),
        ({"cpu_time_limit": 2}, 2.0, "cpu_time_limit"),
        ({"wall_time_limit": "3.5"}, 3.5, "wall_time_limit"),
        ({"cpu_time_limit": 5, "wall_time_limit": 1}, 1.0, "wall_time_limit"),
        ({"cpu_time_limit": 1, "wall_time_limit": 5}, 1.0, "cpu_time_limit"),
    ],
    ids=["default", "cpu", "wall-as-string", "wall-smaller", "cpu-smaller"],
)
def test_the_smaller_time_limit_bounds_the_run(
    fields: dict[str, Any], timeout_s: float | None, field: str
) -> None:
    translated = translate(**fields)
    assert (translated.request.timeout, translated.time_limit_field) == (timeout_s, field)


@pytest.mark.parametrize(
    ("memory_kb", "memory_mb"), [(128000, 125), (262144, 256), (1, 1), (1025.5, 2)], ids=str
)
def test_memory_in_kb_is_rounded_up_to_whole_mib(memory_kb: float, memory_mb: int) -> None:
    assert translate(memory_limit=memory_kb).request.memory_limit_mb == memory_mb


def test_command_line_arguments_are_split_like_shell_words_and_stderr_can_join_stdout() -> None:
    request = translate(
        command_line_arguments="a 'b c' \"d;e\" $HOME", redirect_stderr_to_stdout=True
    ).request
    assert request.args == ["a", "b c", "d;e", "$HOME"]
    assert request.merge_stderr is True


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_an_unsupported_field_is_refused_with_its_reason_unless_it_asks_for_nothing(field: str) -> None:
    accepted, reason = UNSUPPORTED[field]
    refused_value: Any = {bool: True, str: "x", int: 2}.get(type(accepted[0]) if accepted else int, 2)
    assert problems(**{field: refused_value}) == {field: [reason]}
    for value in (None, *accepted):
        harmless: dict[str, Any] = {field: value}
        translate(**harmless)  # null, and what the service does anyway, are accepted


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"language_id": 1}, {"language_id": ["language with id 1 doesn't exist"]}),
        ({"base64_encoded": True, "source_code": "not base64!"}, {"source_code": ["is not valid base64 (base64_encoded=true)"]}),
        ({"command_line_arguments": "'open"}, {"command_line_arguments": ["cannot be split into arguments: No closing quotation"]}),
        (
            {"language_id": 7, "callback_url": "http://x", "number_of_runs": 3},
            {
                "language_id": ["language with id 7 doesn't exist"],
                "callback_url": [UNSUPPORTED["callback_url"][1]],
                "number_of_runs": [UNSUPPORTED["number_of_runs"][1]],
            },
        ),
    ],
    ids=["unknown-language", "bad-base64", "unbalanced-quote", "every-problem-at-once"],
)  # fmt: skip
def test_refusals_name_each_field_and_reason(fields: dict[str, Any], expected: dict[str, list[str]]) -> None:
    assert problems(**fields) == expected


@pytest.mark.parametrize(
    ("core_field", "fields", "judge0_field"),
    [
        ("code", {}, "source_code"),
        ("test_cases[0].stdin", {}, "stdin"),
        ("test_cases[0].expected_output", {}, "expected_output"),
        ("args", {}, "command_line_arguments"),
        ("args[2]", {}, "command_line_arguments"),
        ("memory_limit_mb", {}, "memory_limit"),
        ("timeout", {"cpu_time_limit": 30}, "cpu_time_limit"),
        ("timeout", {"wall_time_limit": 30}, "wall_time_limit"),
    ],
    ids=["code", "case-stdin", "case-expected", "args", "one-arg", "memory", "cpu-time", "wall-time"],
)
def test_a_core_refusal_is_answered_under_the_judge0_field(
    core_field: str, fields: dict[str, Any], judge0_field: str
) -> None:
    refusal = refusal_of(
        InvalidRequestError("no", field=core_field), translate(**fields), prefix="submissions[1]."
    )
    assert isinstance(refusal, InvalidFieldsError)
    assert refusal.problems == {f"submissions[1].{judge0_field}": ["no"]}


def test_a_core_refusal_without_a_field_stays_as_it_is() -> None:
    error = InvalidRequestError("no")
    assert refusal_of(error, translate()) is error


# --- answers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [(None, DEFAULT_FIELDS), ("", DEFAULT_FIELDS), ("*", KEPT_FIELDS), ("stdout, status_id,stdout", ("stdout", "status_id"))],
    ids=["absent", "empty", "all", "named"],
)  # fmt: skip
def test_requested_fields(fields: str | None, expected: tuple[str, ...]) -> None:
    assert requested_fields(fields) == expected


def test_unknown_fields_are_a_400_naming_them() -> None:
    with pytest.raises(InvalidRequestError, match=r"invalid fields: \[nope, x\]"):
        requested_fields("stdout,nope,x")


def test_render_answers_the_fields_asked_base64_for_text_and_null_for_what_is_not_kept() -> None:
    values = {"stdout": "héllo\n", "message": "m", "time": "0.100", "stderr": None}
    rendered = render(values, ("stdout", "message", "time", "stderr", "source_code"), base64_encoded=True)
    assert rendered == {
        "stdout": b64("héllo\n"),
        "message": "bQ==",
        "time": "0.100",
        "stderr": None,
        "source_code": None,
    }


def test_a_token_is_the_execution_id_as_a_uuid_and_back() -> None:
    assert token_of(EXECUTION_ID) == TOKEN
    assert (
        execution_id_of(TOKEN)
        == execution_id_of(EXECUTION_ID)
        == execution_id_of(TOKEN.upper())
        == EXECUTION_ID
    )
    with pytest.raises(NotFoundError):
        execution_id_of("not-a-token")


def test_timestamps_are_judge0s_utc_milliseconds() -> None:
    assert timestamp(CREATED) == "2026-11-27T12:00:00.123Z"
    assert timestamp(CREATED.astimezone(UTC) + timedelta(hours=0)) == "2026-11-27T12:00:00.123Z"
    # the SDK's parser
    assert datetime.strptime(timestamp(CREATED), "%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: DTZ007 - what the SDK does


def view(state: ExecutionState, **fields: Any) -> ExecutionView:
    return ExecutionView(execution_id=EXECUTION_ID, state=state, created_at=CREATED, **fields)


@pytest.mark.parametrize(
    ("execution", "status", "message"),
    [
        (view(ExecutionState.RUNNING), 2, None),
        (view(ExecutionState.FAILED, error=ExecutionFailure(error="backend_unavailable", message="the pod vanished"), finished_at=CREATED), 13, "the pod vanished"),
        (view(ExecutionState.CANCELLED, error=ExecutionFailure(error=CANCELLED_ERROR, message="x"), finished_at=CREATED), 13, "the submission was cancelled (DELETE)"),
        (view(ExecutionState.SUCCEEDED, result=response("out\n"), finished_at=CREATED), 3, None),
    ],
    ids=["running", "failed", "cancelled", "succeeded"],
)  # fmt: skip
def test_an_execution_reads_as_a_submission(
    execution: ExecutionView, status: int, message: str | None
) -> None:
    values = execution_values(execution)
    assert (values["token"], values["status_id"], values["status"]["id"], values.get("message")) == (
        TOKEN,
        status,
        status,
        message,
    )
    assert values["created_at"] == "2026-11-27T12:00:00.123Z"


def test_a_finished_execution_answers_its_run() -> None:
    result = response("out\n").model_copy(
        update={"cpu_time": 0.0421, "execution_time": 0.05, "memory_kb": 512}
    )
    values = execution_values(
        view(ExecutionState.SUCCEEDED, result=result, finished_at=CREATED + timedelta(seconds=1))
    )
    assert {
        name: values[name]
        for name in ("stdout", "stderr", "time", "wall_time", "memory", "exit_code", "finished_at")
    } == {
        "stdout": "out\n",
        "stderr": None,
        "time": "0.042",
        "wall_time": "0.050",
        "memory": 512,
        "exit_code": 0,
        "finished_at": "2026-11-27T12:00:01.123Z",
    }
