"""Read what the runner cannot see from pod and Job status: pure functions over client models."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kubernetes.client import V1ContainerStatus, V1Job, V1Pod

from functions.backends.kubernetes.constants import CONTAINER_NAME

# Waiting reasons that never resolve by waiting longer: the image or the container spec is broken.
UNSTARTABLE_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
OOM_KILLED = "OOMKilled"
DEADLINE_EXCEEDED = "DeadlineExceeded"
_MEBI = re.compile(r"^(\d+)Mi$")


class PodPhase(StrEnum):
    PENDING = "pending"  # not scheduled or not started yet
    RUNNING = "running"
    TERMINATED = "terminated"  # the runner container ended (or the pod failed as a whole)
    UNSTARTABLE = "unstartable"  # the container can never start (image pull, config)
    GONE = "gone"  # the pod was deleted before it ended (deadline kill, someone's cancel)


@dataclass(frozen=True, slots=True)
class PodObservation:
    phase: PodPhase
    pod_name: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str = ""
    wall_time_s: float = 0.0

    @property
    def finished(self) -> bool:
        return self.phase in {PodPhase.TERMINATED, PodPhase.UNSTARTABLE, PodPhase.GONE}


def observe_pod(pod: V1Pod, *, deleted: bool = False) -> PodObservation:
    """Classify one pod snapshot; `deleted` is true for a watch DELETED event."""
    name = pod.metadata.name if pod.metadata else None
    status = pod.status
    container = _runner_status(pod)
    if container is not None and container.state is not None:
        waiting = container.state.waiting
        if waiting is not None and waiting.reason in UNSTARTABLE_REASONS:
            return PodObservation(
                PodPhase.UNSTARTABLE, name, reason=waiting.reason, message=waiting.message or ""
            )
        terminated = container.state.terminated
        if terminated is not None:
            return PodObservation(
                PodPhase.TERMINATED,
                name,
                exit_code=terminated.exit_code,
                reason=terminated.reason,
                message=terminated.message or "",
                wall_time_s=_seconds_between(terminated.started_at, terminated.finished_at),
            )
    if status is not None and status.phase in {"Succeeded", "Failed"}:
        # The pod ended without a container state (evicted, node lost, pod-level deadline).
        return PodObservation(PodPhase.TERMINATED, name, reason=status.reason, message=status.message or "")
    if deleted:
        return PodObservation(PodPhase.GONE, name, reason="Deleted")
    if status is not None and status.phase == "Running":
        return PodObservation(PodPhase.RUNNING, name)
    return PodObservation(PodPhase.PENDING, name)


def job_failure_reason(job: V1Job, *, now: datetime) -> str | None:
    """Why the Job failed (`DeadlineExceeded`, `BackoffLimitExceeded`, ...), or None while it has not.

    `FailureTarget` is recorded before the Job controller kills the pods, so a pod that vanished for a
    deadline is explained even before the final `Failed` condition lands; past the deadline by the clock
    counts as well, for controllers that record nothing until the pods are gone.
    """
    status = job.status
    for condition in (status.conditions if status else None) or []:
        if condition.type in {"Failed", "FailureTarget"} and condition.status == "True":
            return condition.reason or "Failed"
    deadline_s = job.spec.active_deadline_seconds if job.spec else None
    started = status.start_time if status else None
    if deadline_s is not None and started is not None and (now - started).total_seconds() >= deadline_s:
        return DEADLINE_EXCEEDED
    return None


def memory_limit_mb(pod: V1Pod | None) -> int:
    """The runner container's memory limit in MiB as we wrote it (`<n>Mi`), else 0."""
    if pod is None or pod.spec is None:
        return 0
    for container in pod.spec.containers:
        if container.name == CONTAINER_NAME and container.resources and container.resources.limits:
            match = _MEBI.match(str(container.resources.limits.get("memory", "")))
            return int(match.group(1)) if match else 0
    return 0


def _runner_status(pod: V1Pod) -> V1ContainerStatus | None:
    statuses = (pod.status.container_statuses if pod.status else None) or []
    return next((status for status in statuses if status.name == CONTAINER_NAME), None)


def _seconds_between(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())
