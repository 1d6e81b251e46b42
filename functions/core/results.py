"""Turn the runner's report into the HTTP response (DESIGN section 1)."""

from __future__ import annotations

from functions.core.models import ExecuteResponse, TestCaseResult, TruncationFlags
from functions.core.protocol import CaseReport, RunnerReport, RunnerTask, b64decode, b64encode
from functions.core.verdicts import Verdict, overall_verdict


def decode_text(data_b64: str) -> str:
    return b64decode(data_b64).decode("utf-8", errors="replace")


def build_response(task: RunnerTask, report: RunnerReport, *, include_test_results: bool) -> ExecuteResponse:
    """`include_test_results` is true when the request sent test_cases (even a single one)."""
    common = {
        "execution_id": task.execution_id,
        "language": task.language.name,
        "language_version": report.language_version,
    }
    if report.internal_error is not None:
        return ExecuteResponse(
            status="failed",
            stdout="",
            stderr=report.internal_error,
            execution_time=0.0,
            exit_code=None,
            verdict=Verdict.INTERNAL_ERROR,
            **common,
        )
    compile_output = decode_text(report.compile.output_b64) if report.compile else ""
    if report.compile is not None and not report.compile.succeeded:
        return ExecuteResponse(
            status="failed",
            stdout="",
            stderr=compile_output,
            execution_time=report.compile.wall_time_s,
            exit_code=report.compile.exit_code,
            verdict=Verdict.COMPILATION_ERROR,
            compile_output=compile_output,
            **common,
        )
    if not report.cases:
        return ExecuteResponse(
            status="failed",
            stdout="",
            stderr="the runner reported no run",
            execution_time=0.0,
            exit_code=None,
            verdict=Verdict.INTERNAL_ERROR,
            **common,
        )
    results = [_case_result(case) for case in report.cases]
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
        truncated=deciding.truncated,
        test_results=results if include_test_results else None,
        **common,
    )


def _case_result(case: CaseReport) -> TestCaseResult:
    return TestCaseResult(
        verdict=case.verdict,
        stdout=decode_text(case.stdout_b64),
        stderr=decode_text(case.stderr_b64),
        exit_code=case.exit_code,
        signal=case.signal,
        execution_time=round(case.wall_time_s, 4),
        cpu_time=round(case.cpu_time_s, 4),
        memory_kb=case.memory_kb,
        truncated=TruncationFlags(stdout=case.stdout_truncated, stderr=case.stderr_truncated),
    )


def killed_sandbox_report(
    language_version: str, *, verdict: Verdict, exit_code: int, wall_time_s: float, memory_kb: int, note: str
) -> RunnerReport:
    """What a backend reports when the whole sandbox died before the runner could write its document.

    It takes the language version rather than the task: the Kubernetes backend's Step Functions poll knows
    only the Job (whose annotation carries the version), not the task that created it.
    """
    case = CaseReport(
        verdict=verdict,
        exit_code=exit_code,
        signal="SIGKILL",
        stderr_b64=b64encode(note.encode("utf-8")),
        wall_time_s=wall_time_s,
        memory_kb=memory_kb,
    )
    return RunnerReport(language_version=language_version, cases=[case])
