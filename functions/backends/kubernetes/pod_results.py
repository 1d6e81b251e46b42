"""A finished (or cut) pod -> the evidence its containers left: which logs to read, how much, and whether the
run's deadline explains a container that left none. `report.assemble_report` turns them into one report."""

from __future__ import annotations

from collections.abc import Callable

from functions.backends.kubernetes.constants import COMPILE_CONTAINER, RUNNER_CONTAINER
from functions.backends.kubernetes.pod_state import ContainerEnd, PodPhase, memory_limit_mb
from functions.backends.kubernetes.pod_watch import WaitResult
from functions.backends.kubernetes.report import ContainerEvidence, PodEvidence, assemble_report
from functions.core.errors import BackendUnavailableError
from functions.core.protocol import RunnerReport, RunnerTask
from functions.core.report_checks import ReportExpectations, max_report_bytes

# (pod name, container name, at most this many bytes) -> the container's log, None when it is gone.
LogReader = Callable[[str, str, int], bytes | None]


def expectations_of(task: RunnerTask) -> ReportExpectations:
    return ReportExpectations(
        case_count=len(task.cases),
        compiled=task.compile is not None,
        output_limit_bytes=task.limits.output_limit_bytes,
    )


def run_report(
    waited: WaitResult, task: RunnerTask, *, read_log: LogReader, deadline_exceeded: Callable[[], bool]
) -> RunnerReport:
    """The run's report; `deadline_exceeded` (the Job's deadline, an API call) is asked only when a container
    left no report. Raises for a pod someone else deleted."""
    observation = waited.observation
    expectations = expectations_of(task)
    compile_evidence = None
    if expectations.compiled:
        compile_evidence = _container(waited, COMPILE_CONTAINER, observation.compile, expectations, read_log)
    runner_evidence = _container(waited, RUNNER_CONTAINER, observation.runner, expectations, read_log)
    out_of_time = waited.out_of_time
    if not out_of_time and (
        observation.phase is PodPhase.GONE or _unexplained(compile_evidence, runner_evidence)
    ):
        out_of_time = deadline_exceeded()
    if observation.phase is PodPhase.GONE and not out_of_time:
        # Not a deadline: someone deleted the pod (node drain, preemption, a cancel).
        raise BackendUnavailableError("the runner pod was deleted before it finished")
    return assemble_report(
        PodEvidence(
            execution_id=task.execution_id,
            expectations=expectations,
            compile=compile_evidence,
            runner=runner_evidence,
            out_of_time=out_of_time,
            language_version=task.language.version,
        )
    )


def _unexplained(compile_evidence: ContainerEvidence | None, runner_evidence: ContainerEvidence) -> bool:
    """A container that should have reported left nothing (a failed compile stops the pod before the run)."""
    if compile_evidence is not None:
        if not compile_evidence.log:
            return True
        if compile_evidence.end is not None and compile_evidence.end.exit_code != 0:
            return False
    return not runner_evidence.log


def _container(
    waited: WaitResult,
    name: str,
    end: ContainerEnd | None,
    expectations: ReportExpectations,
    read_log: LogReader,
) -> ContainerEvidence:
    pod_name = waited.observation.pod_name
    log = None
    if end is not None and pod_name:
        compiled = name == COMPILE_CONTAINER
        part = expectations.model_copy(
            update={"compiled": compiled, "case_count": 0 if compiled else expectations.case_count}
        )
        # One byte more than the largest honest report: a longer log is refused without reading it all.
        log = read_log(pod_name, name, max_report_bytes(part) + 1)
    return ContainerEvidence(name=name, end=end, log=log, memory_limit_mb=memory_limit_mb(waited.pod, name))
