"""A checked report and its judging plan -> the HTTP response (docs/api.md)."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from functions.core.judging import JudgingPlan, judge_case
from functions.core.models import ExecuteResponse, TestCaseResult, TruncationFlags
from functions.core.protocol import ProcessReport, RunnerReport, StreamReport, b64decode
from functions.core.report_checks import (
    ReportExpectations,
    ReportRejectedError,
    check_report,
    compile_succeeded,
)
from functions.core.verdicts import Verdict, overall_verdict

# Called with the reason whenever a report is refused: the adapter that owns logging records it.
RejectionListener = Callable[[str, str], None]


def decode_text(stream: StreamReport) -> str:
    """The kept bytes as text; a character the cap cut in two is left out, not replaced by U+FFFD."""
    kept = b64decode(stream.data_b64)
    cut = stream.total_bytes > len(kept)
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(kept, final=not cut)


def expectations_of(plan: JudgingPlan) -> ReportExpectations:
    return ReportExpectations(
        case_count=plan.case_count, compiled=plan.compiled, output_limit_bytes=plan.output_limit_bytes
    )


def build_response(
    plan: JudgingPlan, report: RunnerReport, *, on_rejected: RejectionListener | None = None
) -> ExecuteResponse:
    """Judge `report` against `plan`; a report that fails its checks answers internal_error."""
    try:
        report = check_report(report, expectations_of(plan))
    except ReportRejectedError as exc:
        if on_rejected is not None:
            on_rejected(plan.execution_id, str(exc))
        report = RunnerReport(language_version=report.language_version, internal_error=str(exc))
    common = {
        "execution_id": plan.execution_id,
        "language": plan.language,
        "language_version": report.language_version or plan.language_version,
    }
    if report.internal_error is not None:
        return _failure(Verdict.INTERNAL_ERROR, report.internal_error, common)
    if report.compile is not None and not compile_succeeded(report.compile):
        return _compile_failure(report.compile, plan, common)
    compile_output = decode_text(report.compile.stdout) if report.compile else ""
    results = [
        _case_result(case, plan, expected)
        for case, expected in zip(report.cases, plan.expected_sha256, strict=True)
    ]
    verdict = overall_verdict(result.verdict for result in results)
    deciding = next((result for result in results if result.verdict is not Verdict.ACCEPTED), results[0])
    return ExecuteResponse(
        status="success" if verdict is Verdict.ACCEPTED else "failed",
        stdout=deciding.stdout,
        stderr=deciding.stderr,
        execution_time=round(sum(result.execution_time for result in results), 4),
        cpu_time=round(sum(result.cpu_time for result in results), 4),
        memory_kb=max(result.memory_kb for result in results),
        exit_code=deciding.exit_code,
        signal=deciding.signal,
        verdict=verdict,
        compile_output=compile_output,
        compile_cached=report.compile_cached,
        truncated=deciding.truncated,
        test_results=results if plan.include_test_results else None,
        **common,
    )


def _failure(verdict: Verdict, message: str, common: dict[str, str]) -> ExecuteResponse:
    return ExecuteResponse(
        status="failed",
        stdout="",
        stderr=message,
        execution_time=0.0,
        exit_code=None,
        verdict=verdict,
        **common,
    )


def _compile_failure(step: ProcessReport, plan: JudgingPlan, common: dict[str, str]) -> ExecuteResponse:
    output = decode_text(step.stdout)
    if step.timed_out:
        output += f"\nCompilation timed out after {plan.compile_timeout_s:g} s"
    elif step.oom_killed:
        output += "\nThe compiler ran out of memory"
    return ExecuteResponse(
        status="failed",
        stdout="",
        stderr=output,
        execution_time=round(step.wall_time_s, 4),
        exit_code=step.exit_code,
        verdict=Verdict.COMPILATION_ERROR,
        compile_output=output,
        **common,
    )


def _case_result(case: ProcessReport, plan: JudgingPlan, expected_sha256: str | None) -> TestCaseResult:
    judgement = judge_case(case, plan, expected_sha256)
    stderr = decode_text(case.stderr)
    if judgement.note:
        stderr += ("\n" if stderr and not stderr.endswith("\n") else "") + judgement.note + "\n"
    return TestCaseResult(
        verdict=judgement.verdict,
        stdout=decode_text(case.stdout),
        stderr=stderr,
        exit_code=judgement.exit_code,
        signal=judgement.signal_name,
        execution_time=round(case.wall_time_s, 4),
        cpu_time=round(case.cpu_time_s, 4),
        memory_kb=case.memory_kb,
        truncated=TruncationFlags(stdout=_truncated(case.stdout), stderr=_truncated(case.stderr)),
    )


def _truncated(stream: StreamReport) -> bool:
    return stream.total_bytes > len(b64decode(stream.data_b64))
