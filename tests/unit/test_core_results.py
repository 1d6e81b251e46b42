"""Runner report -> HTTP response, and the verdict rules (pure core)."""

from __future__ import annotations

from functions.core.protocol import CaseReport, CompileReport, RunnerReport, b64encode
from functions.core.results import build_response, killed_sandbox_report
from functions.core.spec import build_task
from functions.core.verdicts import Verdict, overall_verdict
from tests.unit.factories import POLICY, REGISTRY, request


def case(verdict: Verdict, stdout: bytes = b"", exit_code: int = 0, memory_kb: int = 100) -> CaseReport:
    return CaseReport(
        verdict=verdict,
        exit_code=exit_code,
        stdout_b64=b64encode(stdout),
        wall_time_s=0.5,
        cpu_time_s=0.25,
        memory_kb=memory_kb,
    )


def test_overall_verdict_is_first_failure() -> None:
    verdicts = [Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.TIME_LIMIT_EXCEEDED]
    assert overall_verdict(verdicts) is Verdict.WRONG_ANSWER
    assert overall_verdict([Verdict.ACCEPTED] * 3) is Verdict.ACCEPTED


def test_single_run_is_success_with_seed_fields() -> None:
    task = build_task(request(), REGISTRY, POLICY)
    report = RunnerReport(language_version="3.11.2", cases=[case(Verdict.ACCEPTED, b"Hello\n")])
    response = build_response(task, report, include_test_results=False)
    assert response.status == "success"
    assert response.stdout == "Hello\n"
    assert response.exit_code == 0
    assert response.language == "python"
    assert response.language_version == "3.11.2"
    assert response.test_results is None
    assert response.execution_id == task.execution_id


def test_test_cases_report_each_case_and_the_first_failure() -> None:
    task = build_task(request(test_cases=[{"stdin": ""}] * 3), REGISTRY, POLICY)
    report = RunnerReport(
        cases=[
            case(Verdict.ACCEPTED, b"a", memory_kb=10),
            case(Verdict.WRONG_ANSWER, b"b", memory_kb=30),
            case(Verdict.ACCEPTED, b"c", memory_kb=20),
        ]
    )
    response = build_response(task, report, include_test_results=True)
    assert response.status == "failed"
    assert response.verdict is Verdict.WRONG_ANSWER
    assert response.stdout == "b"
    assert response.memory_kb == 30
    assert response.execution_time == 1.5
    assert response.test_results is not None
    assert [result.verdict for result in response.test_results] == [
        Verdict.ACCEPTED,
        Verdict.WRONG_ANSWER,
        Verdict.ACCEPTED,
    ]


def test_compile_failure_reports_compiler_output_in_stderr_too() -> None:
    task = build_task(request(language="cpp"), REGISTRY, POLICY)
    report = RunnerReport(
        compile=CompileReport(
            succeeded=False, exit_code=1, output_b64=b64encode(b"error: x"), wall_time_s=0.3
        )
    )
    response = build_response(task, report, include_test_results=False)
    assert response.verdict is Verdict.COMPILATION_ERROR
    assert response.compile_output == "error: x"
    assert response.stderr == "error: x"
    assert response.exit_code == 1


def test_invalid_utf8_output_is_replaced_not_rejected() -> None:
    task = build_task(request(), REGISTRY, POLICY)
    report = RunnerReport(cases=[case(Verdict.ACCEPTED, b"ok \xff")])
    assert build_response(task, report, include_test_results=False).stdout == "ok \ufffd"


def test_runner_internal_error_is_an_internal_error_verdict() -> None:
    task = build_task(request(), REGISTRY, POLICY)
    response = build_response(task, RunnerReport(internal_error="boom"), include_test_results=False)
    assert response.verdict is Verdict.INTERNAL_ERROR
    assert response.status == "failed"


def test_killed_sandbox_report_carries_the_note() -> None:
    task = build_task(request(), REGISTRY, POLICY)
    report = killed_sandbox_report(
        task.language.version,
        verdict=Verdict.MEMORY_LIMIT_EXCEEDED,
        exit_code=137,
        wall_time_s=1.0,
        memory_kb=9,
        note="killed",
    )
    response = build_response(task, report, include_test_results=False)
    assert response.verdict is Verdict.MEMORY_LIMIT_EXCEEDED
    assert response.exit_code == 137
    assert response.signal == "SIGKILL"
    assert response.stderr == "killed"
    assert response.language_version == task.language.version
