"""Turn what the sandbox saw (SandboxOutcome) into the runner report the core expects. Pure."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from functions.backends.local.sandbox import SandboxOutcome
from functions.core.errors import DeadlineExceededError
from functions.core.protocol import CaseReport, RunnerReport, RunnerTask
from functions.core.results import killed_sandbox_report
from functions.core.verdicts import TIMEOUT_EXIT_CODE, Verdict

logger = logging.getLogger(__name__)

OOM_EXIT_CODE = 137  # 128 + SIGKILL, what a shell shows for an OOM-killed process
# Verdicts a cgroup OOM kill explains when the case died of SIGKILL (a runner time-limit kill stays TLE).
_OOM_EXPLAINS = frozenset({Verdict.RUNTIME_ERROR, Verdict.MEMORY_LIMIT_EXCEEDED, Verdict.INTERNAL_ERROR})


def parse_report(stdout: bytes) -> RunnerReport | None:
    try:
        return RunnerReport.model_validate_json(stdout)
    except ValidationError:
        return None


def interpret_outcome(task: RunnerTask, outcome: SandboxOutcome, *, deadline_cut: bool) -> RunnerReport:
    """The report to answer with.

    `deadline_cut` says the wall timeout was the caller's budget rather than the task's own limits: a
    timeout then raises DeadlineExceededError instead of reporting time_limit_exceeded.
    """
    if outcome.timed_out or outcome.cancelled:
        if deadline_cut or outcome.cancelled:
            raise DeadlineExceededError(
                "the run did not finish inside the request's time budget", execution_id=task.execution_id
            )
        return _killed(
            task,
            outcome,
            verdict=Verdict.TIME_LIMIT_EXCEEDED,
            exit_code=TIMEOUT_EXIT_CODE,
            note="the run exceeded its total time budget and the sandbox was killed",
        )
    report = None if outcome.stdout_overflow else parse_report(outcome.stdout)
    if report is None:
        if outcome.oom_killed:
            return _killed(
                task,
                outcome,
                verdict=Verdict.MEMORY_LIMIT_EXCEEDED,
                exit_code=OOM_EXIT_CODE,
                note="the sandbox ran out of memory and was killed",
            )
        logger.error(
            "runner ended without a valid report: exit %d, stdout %d bytes (overflow %s), stderr tail %r",
            outcome.exit_code,
            len(outcome.stdout),
            outcome.stdout_overflow,
            outcome.stderr[-2000:],
        )
        return RunnerReport(
            language_version=task.language.version,
            internal_error=f"the sandbox ended without a valid report (exit code {outcome.exit_code})",
        )
    if outcome.oom_killed:
        return report.model_copy(update={"cases": [_as_oom(case) for case in report.cases]})
    return report


def _killed(
    task: RunnerTask, outcome: SandboxOutcome, *, verdict: Verdict, exit_code: int, note: str
) -> RunnerReport:
    """The report of a sandbox killed before its runner wrote one, with what the sandbox measured."""
    return killed_sandbox_report(
        task.language.version,
        verdict=verdict,
        exit_code=exit_code,
        wall_time_s=outcome.wall_time_s,
        memory_kb=outcome.peak_memory_kb,
        note=note,
    )


def _as_oom(case: CaseReport) -> CaseReport:
    if case.signal == "SIGKILL" and case.verdict in _OOM_EXPLAINS:
        return case.model_copy(update={"verdict": Verdict.MEMORY_LIMIT_EXCEEDED})
    return case
