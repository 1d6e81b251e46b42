"""Read what the runner cannot see from pod and Job status: pure functions over client models."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kubernetes.client import V1ContainerStatus, V1Job, V1Pod

from functions.backends.kubernetes.constants import COMPILE_CONTAINER, RUNNER_CONTAINER

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
    RUNNING = "running"  # a container of it runs (the compile init container, or the runner)
    TERMINATED = "terminated"  # the runner container ended, the compile container failed, or the pod did
    UNSTARTABLE = "unstartable"  # a container can never start (image pull, config)
    GONE = "gone"  # the pod was deleted before it ended (deadline kill, someone's cancel)


@dataclass(frozen=True, slots=True)
class ContainerEnd:
    """How one container ended, as its status says."""

    exit_code: int
    reason: str | None = None  # Completed, Error, OOMKilled, ...
    message: str = ""
    wall_time_s: float = 0.0

    @property
    def oom_killed(self) -> bool:
        return self.reason == OOM_KILLED


@dataclass(frozen=True, slots=True)
class PodObservation:
    phase: PodPhase
    pod_name: str | None = None
    reason: str | None = None  # the pod's, or the unstartable container's waiting reason
    message: str = ""
    running: str | None = None  # the container that runs now (the compile, then the runner)
    compile: ContainerEnd | None = None
    runner: ContainerEnd | None = None

    @property
    def finished(self) -> bool:
        return self.phase in {PodPhase.TERMINATED, PodPhase.UNSTARTABLE, PodPhase.GONE}


def observe_pod(pod: V1Pod, *, deleted: bool = False) -> PodObservation:
    """Classify one pod snapshot; `deleted` is true for a watch DELETED event."""
    name = pod.metadata.name if pod.metadata else None
    status = pod.status
    statuses = _statuses(pod)
    for container in statuses.values():
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in UNSTARTABLE_REASONS:
            return PodObservation(PodPhase.UNSTARTABLE, name, waiting.reason, waiting.message or "")
    compile_end = _end(statuses.get(COMPILE_CONTAINER))
    runner_end = _end(statuses.get(RUNNER_CONTAINER))
    running = next((name for name, container in statuses.items() if _running(container)), None)
    started = running is not None or any(_end(container) for container in statuses.values())
    ended = runner_end is not None or (compile_end is not None and compile_end.exit_code != 0)
    # Without a container's end, a pod that ended anyway was evicted, lost its node, or hit its deadline.
    if ended or (status is not None and status.phase in {"Succeeded", "Failed"}):
        phase = PodPhase.TERMINATED
    elif deleted:
        phase = PodPhase.GONE
    else:
        phase = PodPhase.RUNNING if started else PodPhase.PENDING
    reason = "Deleted" if phase is PodPhase.GONE else (status.reason if status else None)
    return PodObservation(
        phase,
        name,
        reason=reason,
        message=(status.message if status else None) or "",
        running=running,
        compile=compile_end,
        runner=runner_end,
    )


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


def memory_limit_mb(pod: V1Pod | None, container_name: str) -> int:
    """A container's memory limit in MiB as we wrote it (`<n>Mi`), else 0."""
    spec = pod.spec if pod is not None else None
    containers = [*(spec.init_containers or []), *spec.containers] if spec is not None else []
    for container in containers:
        if container.name == container_name and container.resources and container.resources.limits:
            match = _MEBI.match(str(container.resources.limits.get("memory", "")))
            return int(match.group(1)) if match else 0
    return 0


def _statuses(pod: V1Pod) -> dict[str, V1ContainerStatus]:
    status = pod.status
    every = [
        *((status.init_container_statuses or []) if status else []),
        *((status.container_statuses or []) if status else []),
    ]
    return {container.name: container for container in every}


def _running(container: V1ContainerStatus) -> bool:
    return container.state is not None and container.state.running is not None


def _end(container: V1ContainerStatus | None) -> ContainerEnd | None:
    terminated = container.state.terminated if container is not None and container.state else None
    if terminated is None:
        return None
    return ContainerEnd(
        exit_code=terminated.exit_code,
        reason=terminated.reason,
        message=terminated.message or "",
        wall_time_s=_seconds_between(terminated.started_at, terminated.finished_at),
    )


def _seconds_between(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())
