"""The node agent's pods: one thread per pod runs its init containers, then its containers (see
node_agent.py), and reports their statuses as a kubelet would."""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import shutil
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes import client, utils

from functions.backends.kubernetes.constants import RUNNER_COMMAND
from functions.backends.local.boxes import make_private_dir
from functions.backends.local.uids import UidLease
from functions.settings import get_settings
from tests.cluster.containers import RUNTIME_PIDS, ContainerOutcome, ContainerSpec, Mount

if TYPE_CHECKING:
    from tests.cluster.node_agent import NodeAgent

logger = logging.getLogger("node-agent")

# Without activeDeadlineSeconds a run still ends: the Job backend's pods always carry a deadline.
DEFAULT_RUN_CAP_S = 3600.0
VOLUME_MODE = 0o777  # an emptyDir: writable by the pod's uid, whichever host uid backs it


def now_timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(epoch_s: float) -> str:
    return datetime.datetime.fromtimestamp(epoch_s, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_repository(image: str) -> str:
    """`registry:5000/team/code-exec-runner-python:tag@sha256:...` -> `code-exec-runner-python`."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def _conditions(*, initialized: bool, ready: bool, reason: str | None = None) -> list[dict[str, Any]]:
    now = now_timestamp()
    ready_condition: dict[str, Any] = {"type": "Ready", "status": str(ready), "lastTransitionTime": now}
    if reason:
        ready_condition["reason"] = reason
    return [
        {"type": "Initialized", "status": str(initialized), "lastTransitionTime": now},
        {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": now},
        ready_condition,
    ]


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    spec: ContainerSpec


@dataclass(frozen=True)
class PodView:
    """The fields of a pod the agent reads, checked once (the client's models make every field optional)."""

    namespace: str
    name: str
    uid: str
    phase: str
    deleting: bool
    init_containers: tuple[client.V1Container, ...]
    containers: tuple[client.V1Container, ...]
    volumes: tuple[client.V1Volume, ...]
    active_deadline_s: int | None

    @classmethod
    def of(cls, pod: client.V1Pod) -> PodView:
        meta, spec = pod.metadata or client.V1ObjectMeta(), pod.spec
        return cls(
            namespace=meta.namespace or "",
            name=meta.name or "",
            uid=meta.uid or "",
            phase=(pod.status.phase if pod.status else None) or "Pending",
            deleting=meta.deletion_timestamp is not None,
            init_containers=tuple(spec.init_containers or ()) if spec else (),
            containers=tuple(spec.containers) if spec else (),
            volumes=tuple(spec.volumes or ()) if spec else (),
            active_deadline_s=spec.active_deadline_seconds if spec else None,
        )


def _status(plan: ContainerPlan | client.V1Container, uid: str, state: dict[str, Any]) -> dict[str, Any]:
    name, image = plan.name, plan.image or ""
    running = "running" in state
    return {
        "name": name,
        "image": image,
        "imageID": f"code-exec-node-agent://{image}",
        "containerID": f"code-exec-node-agent://{uid}/{name}",
        "ready": running,
        "started": running,
        "restartCount": 0,
        "state": state,
    }


def _terminated(plan: ContainerPlan, outcome: ContainerOutcome, uid: str) -> dict[str, Any]:
    exit_code = outcome.exit_code
    reason = "OOMKilled" if outcome.oom_killed else ("Completed" if exit_code == 0 else "Error")
    terminated = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": _timestamp(outcome.started_at_s),
        "finishedAt": _timestamp(outcome.finished_at_s),
    }
    return _status(plan, uid, {"terminated": terminated})


class PodRun:
    """One pod on this node: its init containers, then its containers, one after the other, in a thread."""

    def __init__(self, agent: NodeAgent, pod: PodView) -> None:
        self.agent = agent
        self.namespace = pod.namespace
        self.name = pod.name
        self.uid = pod.uid
        self.pod = pod
        self.cancel = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)
        self.volumes_dir = agent.volumes_dir / uuid.uuid4().hex
        self.inits: list[ContainerPlan] = []
        self.mains: list[ContainerPlan] = []
        self.done: list[dict[str, Any]] = []  # the statuses of the containers that ended, in order
        # Removal is owed exactly once: by the worker if it is still running, else by the watcher.
        self._lock = threading.Lock()
        self._finished = False
        self._removal_requested = False

    def request_removal(self) -> None:
        """The pod is being deleted: kill the run, and remove the pod once nothing of it runs."""
        with self._lock:
            self._removal_requested = True
            finished = self._finished
        self.cancel.set()
        if finished:
            self.agent.remove_pod(self.namespace, self.name, self.uid)

    def _patch_status(self, status: dict[str, Any]) -> None:
        self.agent.patch_pod_status(self.namespace, self.name, self.uid, status)

    def _plan(self, container: client.V1Container) -> ContainerPlan | dict[str, Any]:
        """What to run, or the waiting state a kubelet would report instead."""
        image = container.image or ""
        if self.agent.languages.get(image_repository(image)) is None:
            message = f"image {container.image!r} matches no runners/*/language.json 'image' on this node"
            return {"waiting": {"reason": "ErrImagePull", "message": message}}
        if any(var.value_from is not None for var in container.env or []):
            message = "the node agent runs only containers whose env values are literals"
            return {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
        volumes = {volume.name: volume for volume in self.pod.volumes}
        mounts = []
        for mount in container.volume_mounts or []:
            volume = volumes.get(mount.name)
            if volume is None or volume.empty_dir is None:
                message = f"volume {mount.name!r}: the node agent provides emptyDir volumes only"
                return {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            mounts.append(Mount(self.volumes_dir / mount.name, mount.mount_path, bool(mount.read_only)))
        limits = (container.resources.limits if container.resources else None) or {}
        memory = limits.get("memory")
        memory_mb = get_settings().default_memory_limit_mb
        if memory:
            memory_mb = math.ceil(utils.parse_quantity(memory) / 2**20)  # type: ignore[no-untyped-call]
        spec = ContainerSpec(
            command=tuple(container.command or RUNNER_COMMAND),  # the images' entrypoint is the runner
            env={var.name: var.value or "" for var in container.env or []},
            mounts=tuple(mounts),
            memory_limit_mb=memory_mb,
            max_pids=get_settings().max_processes + RUNTIME_PIDS,
        )
        return ContainerPlan(container.name, image, spec)

    def _run(self) -> None:
        try:
            self._run_pod()
        except client.ApiException as exc:
            if exc.status != 404:  # the pod went away under us: nothing left to report
                logger.exception("pod %s/%s", self.namespace, self.name)
        except Exception as exc:  # a pod must never stay Running because the agent failed
            logger.exception("pod %s/%s: the node agent failed", self.namespace, self.name)
            with contextlib.suppress(client.ApiException):
                self._patch_status({"phase": "Failed", "reason": "NodeAgentError", "message": str(exc)})
        finally:
            shutil.rmtree(self.volumes_dir, ignore_errors=True)
            with self._lock:
                self._finished = True
                remove = self._removal_requested
            if remove:
                self.agent.remove_pod(self.namespace, self.name, self.uid)

    def _run_pod(self) -> None:
        every = (*self.pod.init_containers, *self.pod.containers)
        plans = [self._plan(container) for container in every]
        waiting = [
            _status(container, self.uid, plan)
            for container, plan in zip(every, plans, strict=True)
            if not isinstance(plan, ContainerPlan)
        ]
        if waiting:
            # Like a kubelet that cannot pull: the pod stays Pending until someone deletes it.
            self._patch_status({"phase": "Pending", "containerStatuses": waiting})
            return
        runnable = [plan for plan in plans if isinstance(plan, ContainerPlan)]
        self.inits = runnable[: len(self.pod.init_containers)]
        self.mains = runnable[len(self.pod.init_containers) :]
        for volume in self.pod.volumes:
            make_private_dir(self.volumes_dir / volume.name, VOLUME_MODE)
        lease = self.agent.runtime.host.uids.lease()  # one host uid for every container of the pod
        try:
            self._run_containers(lease)
        finally:
            lease.release()

    def _run_containers(self, lease: UidLease) -> None:
        started_s = self.agent.clock()
        deadline_s = self.pod.active_deadline_s
        budget_s = float(deadline_s) if deadline_s else DEFAULT_RUN_CAP_S
        self._patch_status({"startTime": now_timestamp(), "hostIP": "127.0.0.1", "podIP": "127.0.0.1"})
        for plan in [*self.inits, *self.mains]:
            remaining_s = max(budget_s - (self.agent.clock() - started_s), 0.001)
            outcome = self._run_one(plan, lease, remaining_s)
            self.done.append(_terminated(plan, outcome, self.uid))
            deadline_exceeded = outcome.stopped and deadline_s is not None and not self.cancel.is_set()
            if outcome.exit_code != 0 or self.cancel.is_set() or deadline_exceeded:
                self._report_end(deadline_exceeded=deadline_exceeded)
                return
        self._report_end(deadline_exceeded=False)

    def _run_one(self, plan: ContainerPlan, lease: UidLease, timeout_s: float) -> ContainerOutcome:
        key = (self.namespace, self.name, plan.name)
        self.agent.logs.open(key, self.uid)

        def started(pid: int) -> None:
            # The pid first: a test that sees the container running may freeze it at once.
            self.agent.record_pid(self.namespace, self.name, plan.name, pid)
            self._report_running(plan)

        outcome = self.agent.runtime.run(
            plan.spec, lease, timeout_s=timeout_s, cancel=self.cancel, on_start=started
        )
        self.agent.logs.finish(key, outcome.log)
        return outcome

    def _report_running(self, plan: ContainerPlan) -> None:
        initializing = len(self.done) < len(self.inits)
        statuses = [*self.done, _status(plan, self.uid, {"running": {"startedAt": now_timestamp()}})]
        self._patch_status(
            {
                "phase": "Pending" if initializing else "Running",
                "conditions": _conditions(initialized=not initializing, ready=not initializing),
                "initContainerStatuses": statuses[: len(self.inits)],
                "containerStatuses": statuses[len(self.inits) :] or self._initializing(),
            }
        )

    def _initializing(self) -> list[dict[str, Any]]:
        return [_status(plan, self.uid, {"waiting": {"reason": "PodInitializing"}}) for plan in self.mains]

    def _report_end(self, *, deadline_exceeded: bool) -> None:
        done = self.done
        succeeded = len(done) == len(self.inits) + len(self.mains) and all(
            status["state"]["terminated"]["exitCode"] == 0 for status in done
        )
        status: dict[str, Any] = {
            "phase": "Succeeded" if succeeded else "Failed",
            "conditions": _conditions(
                initialized=len(done) >= len(self.inits), ready=False, reason="PodCompleted"
            ),
            "initContainerStatuses": done[: len(self.inits)],
            "containerStatuses": done[len(self.inits) :] or self._initializing(),
        }
        if deadline_exceeded:
            status["reason"] = "DeadlineExceeded"
            status["message"] = "Pod was active on the node longer than the specified deadline"
        self._patch_status(status)
