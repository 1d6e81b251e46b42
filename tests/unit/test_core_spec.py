"""Request -> runner task: decoding, size caps, defaults and ceilings (pure core, no sandbox)."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from functions.core.errors import InvalidRequestError, PayloadTooLargeError, UnknownLanguageError
from functions.core.output_digest import normalized_sha256
from functions.core.protocol import RunnerTask, b64decode
from functions.core.spec import prepare_run
from tests.unit.factories import POLICY, REGISTRY, b64, request


def build_task(*args: Any) -> RunnerTask:
    return prepare_run(*args).task


def test_defaults_apply_when_limits_are_absent() -> None:
    # Given a request with no limits / When it becomes a task
    prepared = prepare_run(request(), REGISTRY, POLICY)
    # Then the configured defaults apply and the code round-trips
    assert prepared.task.run.timeout_s == 10
    assert prepared.task.run.memory_mb == 256
    assert b64decode(prepared.task.source_b64) == b"print(1)"
    assert len(prepared.task.cases) == 1
    assert prepared.plan.expected_sha256 == (None,)


def test_steps_are_resolved_from_the_language() -> None:
    # Given a language whose run command names its file, and arguments
    task = build_task(request(args=["-x"]), REGISTRY, POLICY)
    # Then the step carries the expanded command with the arguments appended, and no compile step
    assert task.run.argv == ("run", "main.x", "-x")
    assert task.compile is None


@pytest.mark.parametrize("merge_stderr", [False, True], ids=["apart", "merged"])
def test_the_run_step_carries_whether_stderr_goes_into_stdout(merge_stderr: bool) -> None:
    task = build_task(request(merge_stderr=merge_stderr), REGISTRY, POLICY)
    assert task.run.merge_stderr is merge_stderr


@pytest.mark.parametrize(
    ("name", "expected"),
    [("py", "python"), ("PYTHON", "python"), ("c++", "cpp"), (" cpp ", "cpp")],
    ids=["alias", "upper-case", "symbol-alias", "padded"],
)
def test_aliases_resolve(name: str, expected: str) -> None:
    assert build_task(request(language=name), REGISTRY, POLICY).language.name == expected


def test_text_encoding_takes_plain_code_and_stdin() -> None:
    task = build_task(request(code="print(2)", stdin="hi", encoding="text"), REGISTRY, POLICY)
    assert b64decode(task.source_b64) == b"print(2)"
    assert b64decode(task.cases[0].stdin_b64) == b"hi"


@pytest.mark.parametrize(
    ("overrides", "error", "message_part"),
    [
        ({"language": "cobol"}, UnknownLanguageError, "unknown language"),
        ({"code": "%%%"}, InvalidRequestError, "code is not valid base64"),
        ({"stdin": "@@"}, InvalidRequestError, "stdin is not valid base64"),
        ({"code": b64("   ")}, InvalidRequestError, "empty"),
        ({"code": base64.b64encode(b"\xff\xfe").decode()}, InvalidRequestError, "UTF-8"),
        ({"timeout": 21}, InvalidRequestError, "ceiling"),
        ({"memory_limit_mb": 513}, InvalidRequestError, "memory_limit_mb"),
        ({"memory_limit_mb": 8}, InvalidRequestError, "memory_limit_mb"),
        ({"args": ["a", "b", "c"]}, InvalidRequestError, "args"),
        ({"args": ["123456789"]}, InvalidRequestError, "longer"),
        ({"args": ["a\x00b"]}, InvalidRequestError, "NUL"),
        ({"test_cases": [{"stdin": ""}] * 4}, InvalidRequestError, "test cases"),
        ({"test_cases": [{"stdin": ""}], "stdin": b64("x")}, InvalidRequestError, "inside each test case"),
        ({"code": b64("x" * 101)}, PayloadTooLargeError, "code is 101 bytes"),
        ({"stdin": b64("x" * 51)}, PayloadTooLargeError, "stdin"),
        (
            {"test_cases": [{"stdin": b64("x" * 20), "expected_output": b64("y" * 20)}] * 2},
            PayloadTooLargeError,
            "over all test cases",
        ),
    ],
    ids=[
        "unknown-language",
        "bad-base64-code",
        "bad-base64-stdin",
        "empty-code",
        "code-not-utf8",
        "timeout-over-ceiling",
        "memory-over-ceiling",
        "memory-under-floor",
        "too-many-args",
        "arg-too-long",
        "arg-with-nul",
        "too-many-test-cases",
        "stdin-beside-test-cases",
        "code-too-large",
        "stdin-too-large",
        "stdin-summed-over-cases",
    ],
)
def test_bad_requests_are_permanent_errors(
    overrides: dict[str, Any], error: type[Exception], message_part: str
) -> None:
    # Given a request that breaks one rule / When it is built / Then a permanent error names the rule
    with pytest.raises(error, match=message_part):
        build_task(request(**overrides), REGISTRY, POLICY)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "%%%"}, "code"),
        ({"code": b64("   ")}, "code"),
        ({"test_cases": [{"stdin": "", "expected_output": "@@"}]}, "test_cases[0].expected_output"),
        ({"stdin": "\ud800", "encoding": "text"}, "stdin"),
        ({"timeout": 21}, "timeout"),
        ({"memory_limit_mb": 8}, "memory_limit_mb"),
        ({"args": ["a\x00b"]}, "args"),
    ],
    ids=["code-base64", "code-empty", "case-expected-output", "stdin-surrogate", "timeout", "memory", "args"],
)
def test_a_refusal_names_the_field_at_fault(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        build_task(request(**overrides), REGISTRY, POLICY)
    assert caught.value.field == field


def test_expected_outputs_stay_with_the_judge() -> None:
    prepared = prepare_run(
        request(test_cases=[{"stdin": b64("1"), "expected_output": b64("2")}, {"stdin": b64("3")}]),
        REGISTRY,
        POLICY,
    )
    assert [b64decode(case.stdin_b64) for case in prepared.task.cases] == [b"1", b"3"]
    assert prepared.plan.expected_sha256 == (normalized_sha256(b"2"), None)


def test_total_budget_never_below_the_timeout() -> None:
    policy = replace(POLICY, total_budget_s=5)
    assert build_task(request(timeout=8), REGISTRY, policy).limits.total_budget_s == 8


def test_each_task_gets_a_fresh_execution_id() -> None:
    assert (
        build_task(request(), REGISTRY, POLICY).execution_id
        != build_task(request(), REGISTRY, POLICY).execution_id
    )
