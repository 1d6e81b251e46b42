"""Evidence -> verdicts -> HTTP response (pure core): the judging table, and reports as untrusted input."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from functions.core.judging import JudgingPlan
from functions.core.output_digest import normalized_sha256
from functions.core.protocol import RunnerReport, b64encode
from functions.core.report_checks import (
    ReportExpectations,
    ReportRejectedError,
    max_report_bytes,
    parse_report,
)
from functions.core.results import build_response
from functions.core.spec import prepare_run
from functions.core.verdicts import Verdict, overall_verdict
from tests.report_factories import process, report, stream
from tests.unit.factories import POLICY, REGISTRY, request


def plan(*expected: bytes | None, compiled: bool = False, patterns: tuple[str, ...] = ()) -> JudgingPlan:
    return JudgingPlan(
        execution_id="run-1",
        language="python",
        compiled=compiled,
        memory_error_patterns=patterns,
        timeout_s=2.0,
        compile_timeout_s=30.0,
        output_limit_bytes=1024,
        expected_sha256=tuple(None if item is None else normalized_sha256(item) for item in expected)
        or (None,),
        include_test_results=len(expected) > 1,
        language_version="3",
    )


def test_overall_verdict_is_first_failure() -> None:
    verdicts = [Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.TIME_LIMIT_EXCEEDED]
    assert overall_verdict(verdicts) is Verdict.WRONG_ANSWER
    assert overall_verdict([Verdict.ACCEPTED] * 3) is Verdict.ACCEPTED


VERDICT_TABLE = [
    pytest.param(process(stdout=b"5\n"), b"5", Verdict.ACCEPTED, 0, None, id="accepted"),
    pytest.param(process(stdout=b"5  \n\n\n"), b"5", Verdict.ACCEPTED, 0, None, id="trailing-space-ignored"),
    pytest.param(process(stdout=b"6\n"), b"5", Verdict.WRONG_ANSWER, 0, None, id="wrong-answer"),
    pytest.param(process(stdout=b" 5\n"), b"5", Verdict.WRONG_ANSWER, 0, None, id="leading-space-counts"),
    pytest.param(process(exit_code=3), None, Verdict.RUNTIME_ERROR, 3, None, id="non-zero-exit"),
    pytest.param(
        process(exit_code=None, signal=signal.SIGSEGV), None, Verdict.RUNTIME_ERROR, 139, "SIGSEGV", id="segv"
    ),
    pytest.param(
        process(exit_code=None, signal=signal.SIGKILL), None, Verdict.RUNTIME_ERROR, 137, "SIGKILL",
        id="bare-sigkill-is-not-mle",
    ),
    pytest.param(
        process(exit_code=None, signal=signal.SIGKILL, oom_killed=True), None,
        Verdict.MEMORY_LIMIT_EXCEEDED, 137, "SIGKILL", id="oom-evidence",
    ),
    pytest.param(
        process(exit_code=1, stderr=b"MemoryError\n"), None, Verdict.MEMORY_LIMIT_EXCEEDED, 1, None,
        id="language-memory-error",
    ),
    pytest.param(
        process(exit_code=0, stderr=b"MemoryError\n"), None, Verdict.ACCEPTED, 0, None,
        id="memory-error-text-of-a-successful-run",
    ),
    pytest.param(
        process(exit_code=None, signal=signal.SIGKILL, timed_out=True), None,
        Verdict.TIME_LIMIT_EXCEEDED, 124, None, id="timed-out",
    ),
    pytest.param(
        process(exit_code=None, signal=signal.SIGXCPU, cpu_time_s=3.0), None,
        Verdict.TIME_LIMIT_EXCEEDED, 124, None, id="cpu-rlimit-sigxcpu",
    ),
    pytest.param(
        process(exit_code=None, signal=signal.SIGXCPU, cpu_time_s=0.01), None,
        Verdict.RUNTIME_ERROR, 152, "SIGXCPU", id="sigxcpu-the-program-sent-itself",
    ),
    pytest.param(
        process(exit_code=None, signal=signal.SIGXFSZ), None,
        Verdict.OUTPUT_LIMIT_EXCEEDED, 153, "SIGXFSZ", id="sigxfsz",
    ),
    pytest.param(
        process(exit_code=None, not_run=True), b"5", Verdict.TIME_LIMIT_EXCEEDED, 124, None, id="not-run"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("case", "expected", "verdict", "exit_code", "signal_name"), VERDICT_TABLE)
def test_verdict_rules(
    case: Any, expected: bytes | None, verdict: Verdict, exit_code: int, signal_name: str | None
) -> None:
    # Given the evidence of one case and, maybe, its expected output (kept by the service as a digest)
    # When it is judged
    response = build_response(plan(expected, patterns=(r"\bMemoryError\b",)), report(case))
    # Then the verdict, exit code and signal follow the documented table
    assert (response.verdict, response.exit_code, response.signal) == (verdict, exit_code, signal_name)
    assert response.status == ("success" if verdict is Verdict.ACCEPTED else "failed")


def test_a_time_limit_note_is_appended_to_stderr() -> None:
    case = process(exit_code=None, signal=signal.SIGKILL, timed_out=True, stderr=b"partial")
    response = build_response(plan(None), report(case))
    assert response.stderr == "partial\nTime limit exceeded: the program was killed after 2 s\n"


def test_test_cases_report_each_case_and_the_first_failure() -> None:
    # Given three cases, the second wrong and the third failing
    cases = (process(stdout=b"1\n"), process(stdout=b"3\n"), process(exit_code=2))
    response = build_response(plan(b"1", b"2", b"3"), report(*cases))
    # Then each case has its verdict and the top level shows the first failure's
    assert response.test_results is not None
    assert [result.verdict for result in response.test_results] == [
        Verdict.ACCEPTED,
        Verdict.WRONG_ANSWER,
        Verdict.RUNTIME_ERROR,
    ]
    assert (response.verdict, response.stdout) == (Verdict.WRONG_ANSWER, "3\n")
    assert response.memory_kb == 1024


def test_compile_failure_reports_compiler_output_in_stderr_too() -> None:
    failed = process(exit_code=1, stdout=b"main.cpp:1: error")
    response = build_response(plan(None, compiled=True), report(compile_step=failed))
    assert (response.verdict, response.compile_output, response.stderr) == (
        Verdict.COMPILATION_ERROR,
        "main.cpp:1: error",
        "main.cpp:1: error",
    )


def test_compile_timeout_says_so() -> None:
    failed = process(exit_code=None, signal=signal.SIGKILL, timed_out=True)
    response = build_response(plan(None, compiled=True), report(compile_step=failed))
    assert response.verdict is Verdict.COMPILATION_ERROR
    assert "Compilation timed out after 30 s" in response.compile_output


def test_invalid_utf8_output_is_replaced_not_rejected() -> None:
    response = build_response(plan(None), report(process(stdout=b"\xff\xfeok")))
    assert response.stdout == "\ufffd\ufffdok"


@pytest.mark.parametrize(
    ("kept", "total_bytes", "text"),
    [
        pytest.param(b"ab\xc3", 10, "ab", id="a-character-the-cap-cut-is-left-out"),
        pytest.param(b"ab\xc3", 3, "ab\ufffd", id="an-unfinished-character-at-the-very-end-is-replaced"),
    ],
)
def test_the_kept_head_of_an_output_is_decoded_whole(kept: bytes, total_bytes: int, text: str) -> None:
    case = process().model_copy(update={"stdout": stream(kept, total_bytes=total_bytes)})
    assert build_response(plan(None), report(case)).stdout == text


def test_internal_error_is_an_internal_error_verdict() -> None:
    response = build_response(plan(None), RunnerReport(internal_error="boom"))
    assert (response.verdict, response.stderr, response.language_version) == (
        Verdict.INTERNAL_ERROR,
        "boom",
        "3",
    )


def test_expected_outputs_never_reach_the_task() -> None:
    # Given a request with expected outputs
    prepared = prepare_run(
        request(encoding="text", code="x", test_cases=[{"stdin": "1", "expected_output": "SECRET"}]),
        REGISTRY,
        POLICY,
    )
    # Then the task the sandbox gets has no trace of them; the plan keeps only their digest
    assert b"SECRET" not in prepared.task.model_dump_json().encode()
    assert prepared.plan.expected_sha256 == (normalized_sha256(b"SECRET"),)


# --- reports are untrusted input ---------------------------------------------------------------------------

EXPECTATIONS = ReportExpectations(case_count=1, compiled=False, output_limit_bytes=1024)


def _raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _honest() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(report(process(stdout=b"hi\n")).model_dump_json())
    return document


def _with_case(**changes: Any) -> bytes:
    document = _honest()
    document["cases"][0].update(changes)
    return _raw(document)


MALICIOUS_REPORTS = [
    pytest.param(b'{"version": 2, "cases": [{"wall_time_s": NaN', id="truncated-json"),
    pytest.param(_with_case(wall_time_s=float("nan")), id="nan"),
    pytest.param(_with_case(cpu_time_s=float("inf")), id="infinity"),
    pytest.param(_with_case(wall_time_s=-1), id="negative-time"),
    pytest.param(_with_case(memory_kb=-5), id="negative-memory"),
    pytest.param(_with_case(exit_code=300), id="exit-code-out-of-range"),
    pytest.param(_with_case(verdict="accepted"), id="a-verdict-field"),
    pytest.param(_with_case(exit_code=0, signal=9), id="exit-and-signal"),
    pytest.param(
        _with_case(stdout={**stream(b"x").model_dump(), "data_b64": "@@not base64@@"}), id="bad-base64"
    ),
    pytest.param(
        _with_case(stdout={**stream(b"x").model_dump(), "normalized_sha256": "0" * 10}), id="bad-digest"
    ),
    pytest.param(_with_case(stdout=stream(b"abc", total_bytes=1).model_dump()), id="total-below-data"),
    pytest.param(_raw({**_honest(), "cases": []}), id="fewer-cases"),
    pytest.param(_raw({**_honest(), "cases": _honest()["cases"] * 2}), id="more-cases"),
    pytest.param(_raw({**_honest(), "compile": _honest()["cases"][0]}), id="unexpected-compile-step"),
    pytest.param(_raw({**_honest(), "version": 1}), id="old-version"),
    pytest.param(b"[]", id="not-an-object"),
    pytest.param(b"", id="empty"),
]


@pytest.mark.parametrize("raw", MALICIOUS_REPORTS)
def test_malformed_reports_are_refused(raw: bytes) -> None:
    with pytest.raises(ReportRejectedError):
        parse_report(raw, EXPECTATIONS)


def test_an_oversize_report_is_refused_before_parsing() -> None:
    raw = b" " * (max_report_bytes(EXPECTATIONS) + 1)
    with pytest.raises(ReportRejectedError, match="more than"):
        parse_report(raw, EXPECTATIONS)


def test_oversize_stream_is_recapped_and_flagged() -> None:
    # Given a report whose stdout carries 10 KiB where 1 KiB is the cap and claims nothing was cut
    big = b"x" * 10240
    document = _honest()
    document["cases"][0]["stdout"] = stream(big).model_dump()
    parsed = parse_report(_raw(document), EXPECTATIONS)
    # Then the judge keeps the cap and says the stream was truncated
    response = build_response(plan(None), parsed)
    assert len(response.stdout) == 1024
    assert response.truncated.stdout is True


def test_a_refused_report_is_never_accepted_and_is_reported() -> None:
    # Given a report with two cases for a one-case task (the second would be judged accepted)
    rejected: list[tuple[str, str]] = []
    forged = report(process(stdout=b"x"), process(stdout=b"x"))
    # When it is judged
    response = build_response(plan(b"x"), forged, on_rejected=lambda run, why: rejected.append((run, why)))
    # Then the answer is internal_error with the reason, and the listener heard of it
    assert response.verdict is Verdict.INTERNAL_ERROR
    assert "2 test case(s)" in response.stderr
    assert rejected == [("run-1", response.stderr)]


def test_the_digest_decides_beyond_the_kept_bytes() -> None:
    # Given an output larger than the cap whose full stream matches the expected output
    expected = b"y" * 5000 + b"\n"
    case = process()
    case = case.model_copy(
        update={
            "stdout": stream(expected[:1024], total_bytes=len(expected)).model_copy(
                update={"normalized_sha256": normalized_sha256(expected)}
            )
        }
    )
    response = build_response(plan(expected), report(case))
    assert (response.verdict, response.truncated.stdout) == (Verdict.ACCEPTED, True)
    assert b64encode(response.stdout.encode()) != b64encode(expected)
