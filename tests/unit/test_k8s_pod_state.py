"""Pod and Job status -> what the runners could not see: which container ended how, deadlines, bad images."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerState,
    V1ContainerStateRunning,
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
    ContainerEnd,
    PodPhase,
    job_failure_reason,
    memory_limit_mb,
    observe_pod,
)

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def state(
    *, waiting: str | None = None, running: bool = False, terminated: dict[str, Any] | None = None
) -> V1ContainerState | None:
    if waiting is not None:
        return V1ContainerState(waiting=V1ContainerStateWaiting(reason=waiting, message="pull failed"))
    if running:
        return V1ContainerState(running=V1ContainerStateRunning(started_at=T0))
    if terminated is not None:
        return V1ContainerState(
            terminated=V1ContainerStateTerminated(
                started_at=T0, finished_at=T0 + timedelta(seconds=2), **terminated
            )
        )
    return None


def _status(name: str, container_state: V1ContainerState | None) -> list[V1ContainerStatus] | None:
    if container_state is None:
        return None
    return [
        V1ContainerStatus(
            name=name, image="i", image_id="", ready=False, restart_count=0, state=container_state
        )
    ]


def pod(
    phase: str = "Pending",
    *,
    waiting: str | None = None,
    running: bool = False,
    terminated: dict[str, Any] | None = None,
    compile_state: V1ContainerState | None = None,
) -> V1Pod:
    """A run's pod; with `compile_state`, a compiled language's (the init container `compile`)."""
    limits = V1ResourceRequirements(limits={"memory": "288Mi"})
    return V1Pod(
        metadata=V1ObjectMeta(name="exec-1-abcde"),
        spec=V1PodSpec(
            init_containers=[
                V1Container(name="compile", resources=V1ResourceRequirements(limits={"memory": "544Mi"}))
            ]
            if compile_state is not None
            else None,
            containers=[V1Container(name="runner", resources=limits)],
        ),
        status=V1PodStatus(
            phase=phase,
            init_container_statuses=_status("compile", compile_state),
            container_statuses=_status(
                "runner", state(waiting=waiting, running=running, terminated=terminated)
            ),
        ),
    )


COMPILED_OK = state(terminated={"exit_code": 0, "reason": "Completed"})


@pytest.mark.parametrize(
    ("subject", "deleted", "phase", "reason"),
    [
        pytest.param(pod(), False, PodPhase.PENDING, None, id="unscheduled"),
        pytest.param(pod(waiting="ContainerCreating"), False, PodPhase.PENDING, None, id="creating"),
        pytest.param(pod("Running", running=True), False, PodPhase.RUNNING, None, id="running"),
        pytest.param(pod(compile_state=state(running=True)), False, PodPhase.RUNNING, None, id="compiling"),
        pytest.param(
            pod(waiting="PodInitializing", compile_state=COMPILED_OK),
            False,
            PodPhase.RUNNING,
            None,
            id="between",
        ),
        pytest.param(
            pod(
                "Failed",
                waiting="PodInitializing",
                compile_state=state(terminated={"exit_code": 1, "reason": "Error"}),
            ),
            False,
            PodPhase.TERMINATED,
            None,
            id="compile-failed",
        ),
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
            None,
            id="completed",
        ),
        pytest.param(
            pod("Failed", terminated={"exit_code": 137, "reason": "OOMKilled"}),
            False,
            PodPhase.TERMINATED,
            None,
            id="oom-killed",
        ),
        pytest.param(
            pod("Running", running=True), True, PodPhase.GONE, "Deleted", id="deleted-while-running"
        ),
        pytest.param(
            pod("Failed", terminated={"exit_code": 1, "reason": "Error"}),
            True,
            PodPhase.TERMINATED,
            None,
            id="deleted-after-terminating",
        ),
    ],
)
def test_observe_pod(subject: V1Pod, deleted: bool, phase: PodPhase, reason: str | None) -> None:
    observation = observe_pod(subject, deleted=deleted)
    assert (observation.phase, observation.reason) == (phase, reason)
    assert observation.pod_name == "exec-1-abcde"


def test_each_container_end_is_observed() -> None:
    observation = observe_pod(
        pod("Failed", terminated={"exit_code": 137, "reason": "OOMKilled"}, compile_state=COMPILED_OK)
    )
    assert observation.finished
    assert observation.compile == ContainerEnd(exit_code=0, reason="Completed", wall_time_s=2.0)
    assert observation.runner == ContainerEnd(exit_code=137, reason="OOMKilled", wall_time_s=2.0)
    assert observation.runner.oom_killed


@pytest.mark.parametrize(
    ("subject", "running"),
    [
        pytest.param(pod(), None, id="not-started"),
        pytest.param(pod(compile_state=state(running=True)), "compile", id="compiling"),
        pytest.param(pod(waiting="PodInitializing", compile_state=COMPILED_OK), None, id="between"),
        pytest.param(pod("Running", running=True, compile_state=COMPILED_OK), "runner", id="running"),
    ],
)
def test_the_running_container_is_named(subject: V1Pod, running: str | None) -> None:
    # The service's wait counts each container's own time from when it is seen running
    assert observe_pod(subject).running == running


def test_memory_limits_are_read_from_the_pod() -> None:
    subject = pod(compile_state=COMPILED_OK)
    assert (memory_limit_mb(subject, "compile"), memory_limit_mb(subject, "runner")) == (544, 288)
    assert memory_limit_mb(None, "runner") == 0


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
