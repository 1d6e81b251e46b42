"""Pod log + pod/Job status -> the run's RunnerReport: what the runner wrote, completed by what it couldn't see."""

from __future__ import annotations

from pydantic import ValidationError

from functions.backends.kubernetes.pod_state import DEADLINE_EXCEEDED, OOM_KILLED, PodObservation
from functions.core.protocol import RunnerReport
from functions.core.results import killed_sandbox_report
from functions.core.verdicts import TIMEOUT_EXIT_CODE, Verdict

_OOM_EXIT_CODE = 137  # 128 + SIGKILL, what a container runtime reports for an OOM kill


def parse_report(log: bytes) -> RunnerReport | None:
    """The runner's one JSON document; tolerate stray lines around it (pods/log merges stderr)."""
    text = log.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    candidates = [text, *(line for line in reversed(text.splitlines()) if line.lstrip().startswith("{"))]
    for candidate in candidates:
        try:
            return RunnerReport.model_validate_json(candidate)
        except ValidationError:
            continue
    return None


def assemble_report(
    observation: PodObservation,
    report: RunnerReport | None,
    *,
    job_failure: str | None,
    language_version: str,
    memory_limit_mb: int,
) -> RunnerReport:
    if observation.reason == OOM_KILLED:
        if report is None:
            return killed_sandbox_report(
                language_version,
                verdict=Verdict.MEMORY_LIMIT_EXCEEDED,
                exit_code=_OOM_EXIT_CODE,
                wall_time_s=observation.wall_time_s,
                memory_kb=memory_limit_mb * 1024,
                note=f"the sandbox exceeded its memory limit ({memory_limit_mb} MiB) and was killed",
            )
        return _sigkills_as_oom(report)
    if report is not None:
        return report
    if DEADLINE_EXCEEDED in (job_failure, observation.reason):
        return killed_sandbox_report(
            language_version,
            verdict=Verdict.TIME_LIMIT_EXCEEDED,
            exit_code=TIMEOUT_EXIT_CODE,
            wall_time_s=observation.wall_time_s,
            memory_kb=0,
            note="the run exceeded its deadline and was killed",
        )
    detail = ", ".join(
        part
        for part in (
            f"exit code {observation.exit_code}" if observation.exit_code is not None else "",
            observation.reason or "",
            job_failure or "",
            observation.message.strip()[:200],
        )
        if part
    )
    return RunnerReport(
        language_version=language_version,
        internal_error=f"the runner ended without a report ({detail or observation.phase})",
    )


def _sigkills_as_oom(report: RunnerReport) -> RunnerReport:
    """The container cgroup OOM-killed the program; the runner saw only a SIGKILL."""
    cases = [
        case.model_copy(update={"verdict": Verdict.MEMORY_LIMIT_EXCEEDED})
        if case.verdict is Verdict.RUNTIME_ERROR and case.signal == "SIGKILL"
        else case
        for case in report.cases
    ]
    return report.model_copy(update={"cases": cases})
