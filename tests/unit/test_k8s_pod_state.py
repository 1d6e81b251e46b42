"""Pod and Job status -> what the runner could not see (OOM kill, deadline kill, unstartable image)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
    V1Job,
    V1JobCondition,
    V1JobSpec,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1PodStatus,
    V1PodTemplateSpec,
    V1ResourceRequirements,
)

from functions.backends.kubernetes.pod_state import (
    PodObservation,
    PodPhase,
    job_failure_reason,
    memory_limit_mb,
    observe_pod,
)
from functions.backends.kubernetes.report import assemble_report, parse_report
from functions.core.protocol import CaseReport, RunnerReport, b64decode
from functions.core.verdicts import TIMEOUT_EXIT_CODE, Verdict

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def pod(
    phase: str = "Pending", *, waiting: str | None = None, terminated: dict[str, Any] | None = None
) -> V1Pod:
    state = None
    if waiting is not None:
        state = V1ContainerState(waiting=V1ContainerStateWaiting(reason=waiting, message="pull failed"))
    if terminated is not None:
        state = V1ContainerState(
            terminated=V1ContainerStateTerminated(
                started_at=T0, finished_at=T0 + timedelta(seconds=2), **terminated
            )
        )
    statuses = None
    if state is not None:
        statuses = [
            V1ContainerStatus(
                name="runner", image="i", image_id="", ready=False, restart_count=0, state=state
            )
        ]
    return V1Pod(
        metadata=V1ObjectMeta(name="exec-1-abcde"),
        spec=V1PodSpec(
            containers=[
                V1Container(name="runner", resources=V1ResourceRequirements(limits={"memory": "288Mi"}))
            ]
        ),
        status=V1PodStatus(phase=phase, container_statuses=statuses),
    )


@pytest.mark.parametrize(
    ("subject", "deleted", "phase", "reason"),
    [
        pytest.param(pod(), False, PodPhase.PENDING, None, id="unscheduled"),
        pytest.param(pod(waiting="ContainerCreating"), False, PodPhase.PENDING, None, id="creating"),
        pytest.param(pod("Running"), False, PodPhase.RUNNING, None, id="running"),
        pytest.param(
            pod(waiting="ErrImagePull"), False, PodPhase.UNSTARTABLE, "ErrImagePull", id="err-image-pull"
        ),
        pytest.param(
            pod(waiting="ImagePullBackOff"), False, PodPhase.UNSTARTABLE, "ImagePullBackOff", id="backoff"
        ),
        pytest.param(
            pod(waiting="InvalidImageName"), False, PodPhase.UNSTARTABLE, "InvalidImageName", id="invalid"
        ),
        pytest.param(
            pod(waiting="CreateContainerConfigError"),
            False,
            PodPhase.UNSTARTABLE,
            "CreateContainerConfigError",
            id="config-error",
        ),
        pytest.param(
            pod("Succeeded", terminated={"exit_code": 0, "reason": "Completed"}),
            False,
            PodPhase.TERMINATED,
            "Completed",
            id="completed",
        ),
        pytest.param(
            pod("Failed", terminated={"exit_code": 137, "reason": "OOMKilled"}),
            False,
            PodPhase.TERMINATED,
            "OOMKilled",
            id="oom-killed",
        ),
        pytest.param(pod("Running"), True, PodPhase.GONE, "Deleted", id="deleted-while-running"),
        pytest.param(
            pod("Failed", terminated={"exit_code": 1, "reason": "Error"}),
            True,
            PodPhase.TERMINATED,
            "Error",
            id="deleted-after-terminating",
        ),
    ],
)
def test_observe_pod(subject: V1Pod, deleted: bool, phase: PodPhase, reason: str | None) -> None:
    observation = observe_pod(subject, deleted=deleted)
    assert (observation.phase, observation.reason) == (phase, reason)
    assert observation.pod_name == "exec-1-abcde"


def test_terminated_pod_reports_exit_code_and_wall_time() -> None:
    observation = observe_pod(pod("Failed", terminated={"exit_code": 3, "reason": "Error"}))
    assert (observation.exit_code, observation.wall_time_s, observation.finished) == (3, 2.0, True)


def test_memory_limit_is_read_from_the_pod() -> None:
    assert memory_limit_mb(pod()) == 288
    assert memory_limit_mb(None) == 0


def job(*, conditions: tuple[tuple[str, str], ...] = (), started: datetime | None = T0) -> V1Job:
    return V1Job(
        spec=V1JobSpec(active_deadline_seconds=68, template=V1PodTemplateSpec()),
        status=V1JobStatus(
            start_time=started,
            conditions=[
                V1JobCondition(type=kind, status="True", reason=reason) for kind, reason in conditions
            ],
        ),
    )


@pytest.mark.parametrize(
    ("subject", "seconds_later", "expected"),
    [
        pytest.param(job(), 10, None, id="running"),
        pytest.param(job(conditions=(("Complete", "CompletionsReached"),)), 10, None, id="complete"),
        pytest.param(
            job(conditions=(("FailureTarget", "DeadlineExceeded"),)), 10, "DeadlineExceeded", id="target"
        ),
        pytest.param(job(conditions=(("Failed", "DeadlineExceeded"),)), 10, "DeadlineExceeded", id="failed"),
        pytest.param(
            job(conditions=(("Failed", "BackoffLimitExceeded"),)), 10, "BackoffLimitExceeded", id="backoff"
        ),
        pytest.param(job(), 68, "DeadlineExceeded", id="past-deadline-by-the-clock"),
        pytest.param(job(started=None), 1000, None, id="never-started"),
    ],
)
def test_job_failure_reason(subject: V1Job, seconds_later: int, expected: str | None) -> None:
    assert job_failure_reason(subject, now=T0 + timedelta(seconds=seconds_later)) == expected


ACCEPTED = RunnerReport(language_version="3.11.7", cases=[CaseReport(verdict=Verdict.ACCEPTED, exit_code=0)])
SIGKILLED = RunnerReport(
    language_version="3.11.7",
    cases=[
        CaseReport(verdict=Verdict.ACCEPTED, exit_code=0),
        CaseReport(verdict=Verdict.RUNTIME_ERROR, exit_code=-9, signal="SIGKILL"),
    ],
)


def _observation(reason: str | None, exit_code: int | None = 0) -> PodObservation:
    return PodObservation(PodPhase.TERMINATED, "p", exit_code=exit_code, reason=reason, wall_time_s=1.5)


def test_report_passes_through_when_the_runner_wrote_one() -> None:
    report = assemble_report(
        _observation("Completed"), ACCEPTED, job_failure=None, language_version="3.11.7", memory_limit_mb=288
    )
    assert report == ACCEPTED


def test_oom_kill_without_report_is_memory_limit_exceeded() -> None:
    # Given a container the kernel OOM-killed before the runner could write anything
    report = assemble_report(
        _observation("OOMKilled", 137), None, job_failure=None, language_version="3.11.7", memory_limit_mb=288
    )
    # Then the run is memory_limit_exceeded, with the sandbox's limit as its memory
    (case,) = report.cases
    assert (case.verdict, case.exit_code, case.signal, case.memory_kb) == (
        Verdict.MEMORY_LIMIT_EXCEEDED,
        137,
        "SIGKILL",
        288 * 1024,
    )
    assert "memory" in b64decode(case.stderr_b64).decode()
    assert report.language_version == "3.11.7"


def test_oom_kill_turns_the_runners_sigkill_into_memory_limit_exceeded() -> None:
    report = assemble_report(
        _observation("OOMKilled"), SIGKILLED, job_failure=None, language_version="3.11.7", memory_limit_mb=288
    )
    assert [case.verdict for case in report.cases] == [Verdict.ACCEPTED, Verdict.MEMORY_LIMIT_EXCEEDED]


def test_deadline_kill_without_report_is_time_limit_exceeded() -> None:
    observation = PodObservation(PodPhase.GONE, "p", reason="Deleted")
    report = assemble_report(
        observation, None, job_failure="DeadlineExceeded", language_version="3.11.7", memory_limit_mb=288
    )
    (case,) = report.cases
    assert (case.verdict, case.exit_code) == (Verdict.TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE)


def test_runner_crash_without_report_is_an_internal_error() -> None:
    report = assemble_report(
        _observation("Error", 2), None, job_failure=None, language_version="3.11.7", memory_limit_mb=288
    )
    assert report.internal_error is not None
    assert "exit code 2" in report.internal_error


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        pytest.param(ACCEPTED.model_dump_json().encode(), ACCEPTED, id="just-the-document"),
        pytest.param(
            b"warning: x\n" + ACCEPTED.model_dump_json().encode() + b"\n", ACCEPTED, id="stray-line-before"
        ),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"Traceback (most recent call last):\n  boom\n", None, id="crash"),
        pytest.param(b'{"cases": [{"verdict": "nonsense"}]}', None, id="invalid-document"),
    ],
)
def test_parse_report(log: bytes, expected: RunnerReport | None) -> None:
    assert parse_report(log) == expected
