"""A pod's container logs and statuses -> the run's one RunnerReport. Pure.

Each container's log is one report of evidence, written by the runner (PID 1 of that container): the compile
container's holds the compile step, the runner container's every case. Each log is untrusted input: it is
bounded and checked by `functions.core.report_checks.parse_report` before anything of it is used. What the
runner could not write down — a container killed for memory or at the run's deadline — comes from the
container's status, through `functions.core.process_evidence`, the one reading of such kills.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from functions.backends.kubernetes.pod_state import ContainerEnd
from functions.core.process_evidence import killed_from_outside, with_oom_evidence
from functions.core.protocol import ProcessReport, RunnerReport, error_report
from functions.core.report_checks import (
    ReportExpectations,
    ReportRejectedError,
    compile_succeeded,
    parse_report,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ContainerEvidence:
    """One container of the pod, as far as the cluster knows it."""

    name: str
    end: ContainerEnd | None  # None: it never ended (killed with its pod, or still running when cut)
    log: bytes | None
    memory_limit_mb: int


@dataclass(frozen=True, slots=True)
class PodEvidence:
    execution_id: str
    expectations: ReportExpectations  # of the whole run
    compile: ContainerEvidence | None  # None for a language that does not compile
    runner: ContainerEvidence
    out_of_time: bool  # the run's deadline passed: the Job's, or the service's own wait
    language_version: str = ""  # shown when no report names one


def assemble_report(evidence: PodEvidence) -> RunnerReport:
    """The compile container's evidence, then (if it succeeded) the runner container's, as one report."""
    compile_step = None
    language_version = ""
    if evidence.compile is not None:
        expectations = evidence.expectations.model_copy(update={"case_count": 0})
        part = _part(evidence, evidence.compile, expectations)
        if part.internal_error is not None or part.compile is None:
            return _named(part, evidence.language_version)
        compile_step, language_version = part.compile, part.language_version
        if not compile_succeeded(compile_step):
            return RunnerReport(
                language_version=language_version or evidence.language_version, compile=compile_step
            )
    part = _part(evidence, evidence.runner, evidence.expectations.model_copy(update={"compiled": False}))
    if part.internal_error is not None:
        return _named(part, language_version or evidence.language_version)
    return RunnerReport(
        language_version=language_version or part.language_version or evidence.language_version,
        compile=compile_step,
        cases=part.cases,
    )


def _part(
    evidence: PodEvidence, container: ContainerEvidence, expectations: ReportExpectations
) -> RunnerReport:
    """What one container reports: its runner's report, completed by its end, or what its end alone shows."""
    end = container.end
    if container.log:
        try:
            report = parse_report(container.log, expectations)
        except ReportRejectedError as exc:
            logger.warning(
                "report rejected",
                extra={
                    "execution_id": evidence.execution_id,
                    "container": container.name,
                    "reason": str(exc),
                },
            )
            if not _killed(evidence, end):
                return error_report(f"the {container.name} container's report was refused: {exc}")
        else:
            return _with_oom(report) if end is not None and end.oom_killed else report
    if _killed(evidence, end):
        return _killed_report(container, expectations)
    return error_report(f"the {container.name} container ended without a report ({_describe(end)})")


def _killed(evidence: PodEvidence, end: ContainerEnd | None) -> bool:
    return (end is not None and end.oom_killed) or evidence.out_of_time


def _killed_report(container: ContainerEvidence, expectations: ReportExpectations) -> RunnerReport:
    """A container killed before its runner could report: for memory (OOMKilled) or at the run's deadline."""
    end = container.end
    oom_killed = end is not None and end.oom_killed
    killed = killed_from_outside(
        timed_out=not oom_killed,
        oom_killed=oom_killed,
        wall_time_s=end.wall_time_s if end is not None else 0.0,
        memory_kb=container.memory_limit_mb * 1024 if oom_killed else 0,
    )
    if expectations.compiled:
        return RunnerReport(compile=killed)
    return RunnerReport(cases=[killed] * expectations.case_count)


def _with_oom(report: RunnerReport) -> RunnerReport:
    """The container was OOMKilled yet its runner reported (a node that kills one process, not the group)."""
    if report.internal_error is not None:
        return report
    if report.compile is not None:
        (compile_step,) = with_oom_evidence([report.compile])
        return report.model_copy(update={"compile": compile_step})
    cases: Sequence[ProcessReport] = with_oom_evidence(list(report.cases))
    return report.model_copy(update={"cases": list(cases)})


def _named(report: RunnerReport, language_version: str) -> RunnerReport:
    return (
        report
        if report.language_version
        else report.model_copy(update={"language_version": language_version})
    )


def _describe(end: ContainerEnd | None) -> str:
    if end is None:
        return "it never ended"
    parts = [f"exit code {end.exit_code}", end.reason or "", end.message.strip()[:200]]
    return ", ".join(part for part in parts if part)
