"""A pod's container logs and ends -> one RunnerReport: each log checked as untrusted, kills as evidence."""

from __future__ import annotations

import logging
import signal

import pytest

from functions.backends.kubernetes.pod_state import ContainerEnd
from functions.backends.kubernetes.report import ContainerEvidence, PodEvidence, assemble_report
from functions.core.process_evidence import NOT_RUN
from functions.core.protocol import ProcessReport, RunnerReport
from functions.core.report_checks import ReportExpectations
from tests.report_factories import process

COMPLETED = ContainerEnd(exit_code=0, reason="Completed", wall_time_s=1.0)
FAILED = ContainerEnd(exit_code=1, reason="Error", wall_time_s=1.0)
OOM_KILLED = ContainerEnd(exit_code=137, reason="OOMKilled", wall_time_s=1.5)
LIMIT_BYTES = 1024


OK = process(stdout=b"ok\n")
SIGKILLED = process(exit_code=None, signal=signal.SIGKILL)


def log(report: RunnerReport) -> bytes:
    return report.model_dump_json().encode() + b"\n"


def evidence(
    runner_log: bytes | None,
    runner_end: ContainerEnd | None = COMPLETED,
    *,
    cases: int = 1,
    compile_log: bytes | None = None,
    compile_end: ContainerEnd | None = None,
    compiled: bool = False,
    out_of_time: bool = False,
) -> PodEvidence:
    compiled = compiled or compile_log is not None or compile_end is not None
    return PodEvidence(
        execution_id="e",
        expectations=ReportExpectations(case_count=cases, compiled=compiled, output_limit_bytes=LIMIT_BYTES),
        compile=ContainerEvidence("compile", compile_end, compile_log, 544) if compiled else None,
        runner=ContainerEvidence("runner", runner_end, runner_log, 288),
        out_of_time=out_of_time,
        language_version="3.11",
    )


def test_an_interpreted_runs_report_passes_through() -> None:
    report = RunnerReport(language_version="3.11.2", cases=[OK])
    assert assemble_report(evidence(log(report))) == report


def test_a_compiled_run_is_the_compile_containers_step_and_the_runner_containers_cases() -> None:
    compile_report = RunnerReport(language_version="12.2.0", compile=process())
    report = assemble_report(
        evidence(log(RunnerReport(cases=[OK])), compile_log=log(compile_report), compile_end=COMPLETED)
    )
    assert report == RunnerReport(language_version="12.2.0", compile=process(), cases=[OK])


def test_a_failed_compile_is_the_whole_report() -> None:
    # Given a compile container that failed (the pod stopped there: the runner container never ran)
    failed = RunnerReport(language_version="12.2.0", compile=process(exit_code=1, stdout=b"error"))
    report = assemble_report(evidence(None, None, compile_log=log(failed), compile_end=FAILED))
    assert report == failed


@pytest.mark.parametrize("cases", [1, 3])
def test_a_container_killed_for_memory_without_a_report_is_oom_facts(cases: int) -> None:
    # Given a runner container the kernel killed for memory as a whole (no report survived)
    report = assemble_report(evidence(None, OOM_KILLED, cases=cases))
    # Then every case died of SIGKILL with the kernel's evidence, at the container's limit
    assert [(case.signal, case.oom_killed, case.memory_kb) for case in report.cases] == [
        (signal.SIGKILL, True, 288 * 1024)
    ] * cases
    assert report.language_version == "3.11"


def test_a_compile_killed_for_memory_is_an_oom_compile_step() -> None:
    report = assemble_report(evidence(None, None, compile_end=OOM_KILLED))
    assert report.compile is not None
    assert (report.compile.oom_killed, report.cases) == (True, [])


@pytest.mark.parametrize(
    ("cases", "oom_killed"),
    [
        pytest.param([OK, SIGKILLED], [False, True], id="the-sigkilled-case"),
        pytest.param([OK, OK], [True, True], id="every-case-when-none-died"),
        pytest.param([OK, NOT_RUN], [True, False], id="not-one-that-never-ran"),
    ],
)
def test_an_oom_killed_container_that_still_reported_marks_its_victims(
    cases: list[ProcessReport], oom_killed: list[bool]
) -> None:
    # Given a container OOMKilled whose runner survived (a node that kills one process, not the group)
    report = assemble_report(evidence(log(RunnerReport(cases=cases)), OOM_KILLED, cases=2))
    assert [case.oom_killed for case in report.cases] == oom_killed


@pytest.mark.parametrize(
    ("pod", "compiled"),
    [
        pytest.param(evidence(None, None, cases=2, out_of_time=True), False, id="runner-still-running"),
        pytest.param(evidence(None, None, compiled=True, out_of_time=True), True, id="compile-still-running"),
        pytest.param(evidence(b'{"version": 2, "cas', FAILED, out_of_time=True), False, id="cut-mid-report"),
    ],
)
def test_a_run_past_its_deadline_without_a_report_is_timed_out(pod: PodEvidence, compiled: bool) -> None:
    report = assemble_report(pod)
    steps = [report.compile] if compiled else report.cases
    assert steps
    assert all(step is not None and step.timed_out and step.signal == signal.SIGKILL for step in steps)


def test_a_runner_that_ended_without_a_report_is_an_internal_error() -> None:
    report = assemble_report(evidence(None, ContainerEnd(exit_code=2, reason="Error")))
    assert report.internal_error is not None
    assert "exit code 2" in report.internal_error


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b"Traceback (most recent call last):\n", "malformed", id="not-json"),
        pytest.param(b"warning\n" + log(RunnerReport(cases=[OK])), "malformed", id="stray-line"),
        pytest.param(log(RunnerReport(cases=[OK, OK])), "2 test case(s) where 1 ran", id="case-count"),
        pytest.param(
            log(RunnerReport(cases=[OK])).replace(b'"wall_time_s":0.01', b'"wall_time_s":NaN'),
            "malformed",
            id="nan",
        ),
        pytest.param(
            log(RunnerReport(cases=[OK])).replace(b'"data_b64":"b2sK"', b'"data_b64":"b2sK!"'),
            "malformed",
            id="bad-base64",
        ),
        pytest.param(
            log(RunnerReport(cases=[OK])).replace(b'"exit_code":0', b'"verdict":"accepted","exit_code":0'),
            "malformed",
            id="a-verdict",
        ),
        pytest.param(b" " * 20_000_000, "more than", id="oversize"),
    ],
)
def test_a_report_that_fails_its_checks_is_refused_and_logged(
    raw: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a runner container's log that is no honest report / When assembled
    with caplog.at_level(logging.WARNING):
        report = assemble_report(evidence(raw))
    # Then the run is an internal error saying why (never judged), and the refusal is logged
    assert report.internal_error is not None
    assert "report was refused" in report.internal_error
    assert reason in report.internal_error
    assert any(record.message == "report rejected" for record in caplog.records)
