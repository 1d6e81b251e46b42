"""Request -> runner task: decoding, size caps, defaults and ceilings (pure core, no sandbox)."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from functions.core.errors import InvalidRequestError, PayloadTooLargeError, UnknownLanguageError
from functions.core.protocol import b64decode
from functions.core.spec import build_task
from tests.unit.factories import POLICY, REGISTRY, b64, request


def test_defaults_apply_when_limits_are_absent() -> None:
    # Given a request with no limits / When it becomes a task
    task = build_task(request(), REGISTRY, POLICY)
    # Then the configured defaults apply and the code round-trips
    assert task.limits.timeout_s == 10
    assert task.limits.memory_limit_mb == 256
    assert b64decode(task.source_b64) == b"print(1)"
    assert len(task.cases) == 1
    assert task.cases[0].expected_output_b64 is None


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


def test_test_cases_carry_expected_output() -> None:
    task = build_task(
        request(test_cases=[{"stdin": b64("1"), "expected_output": b64("2")}, {"stdin": b64("3")}]),
        REGISTRY,
        POLICY,
    )
    assert [b64decode(case.stdin_b64) for case in task.cases] == [b"1", b"3"]
    assert task.cases[0].expected_output_b64 is not None
    assert b64decode(task.cases[0].expected_output_b64) == b"2"
    assert task.cases[1].expected_output_b64 is None


def test_total_budget_never_below_the_timeout() -> None:
    policy = replace(POLICY, total_budget_s=5)
    assert build_task(request(timeout=8), REGISTRY, policy).limits.total_budget_s == 8


def test_each_task_gets_a_fresh_execution_id() -> None:
    assert (
        build_task(request(), REGISTRY, POLICY).execution_id
        != build_task(request(), REGISTRY, POLICY).execution_id
    )
