"""Node agent: a TEST STAND-IN for the kubelet, running the pods of the test cluster in bubblewrap containers.

It is not a kubelet and does not try to be one. It does just what the Job backend relies on:
- registers a Node (capacity, InternalIP 127.0.0.1, kubelet port) and removes the not-ready taint that
  admission puts on every new Node (there is no node-lifecycle controller to do it);
- watches the pods bound to it; maps each container's image to a language (last path segment without tag
  == language.json `image`) and runs the container as `containers.ContainerRuntime` does: its command and
  literal env, the pod's emptyDir volumes (host dirs shared by the pod's containers) at their mount paths,
  its memory limit, the `RuntimeDefault` seccomp profile, the runner as PID 1, one host uid per pod;
- runs init containers one after the other before the main one; a failed init container fails the pod
  and the main container never starts (restartPolicy Never), as a kubelet does;
- reports what a kubelet would: waiting ErrImagePull for an image no language uses,
  CreateContainerConfigError for env or volumes it cannot provide, Pending with the running init container
  (main containers PodInitializing), Running with start time, then terminated with exit code, reason
  Completed/Error/OOMKilled and finish time in initContainerStatuses/containerStatuses, phase
  Succeeded/Failed; DeadlineExceeded when the pod's own activeDeadlineSeconds passes;
- on pod deletion (Job deleted, deadline, TTL) kills the run and removes the pod (grace period 0), as the
  kubelet does once containers are gone;
- serves container logs (node_logs) so `pods/log` works through the apiserver;
- for tests that must freeze a runner from outside (as a stalled node would), writes each container's host
  pid to `<state dir>/pids/<namespace>/<pod>/<container>`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import math
import os
import platform
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, utils, watch

from functions.backends.kubernetes.constants import RUNNER_COMMAND
from functions.backends.local.boxes import make_private_dir
from functions.backends.local.uids import UidLease
from functions.core.languages import LanguageSpec, load_registry
from functions.settings import get_settings
from tests.cluster.containers import (
    RUNTIME_PIDS,
    ContainerOutcome,
    ContainerRuntime,
    ContainerSpec,
    Mount,
)
from tests.cluster.node_logs import LogStore, serve_logs

logger = logging.getLogger("node-agent")

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# Without activeDeadlineSeconds a run still ends: the Job backend's pods always carry a deadline.
DEFAULT_RUN_CAP_S = 3600.0
WATCH_TIMEOUT_S = 60
SHUTDOWN_JOIN_S = 10.0
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
# The label a kubelet gives its Node (Go's GOARCH names), so a pod's arch selector schedules here.
NODE_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
VOLUME_MODE = 0o777  # an emptyDir: writable by the pod's uid, whichever host uid backs it


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(epoch_s: float) -> str:
    return datetime.datetime.fromtimestamp(epoch_s, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_repository(image: str) -> str:
    """`registry:5000/team/code-exec-runner-python:tag@sha256:...` -> `code-exec-runner-python`."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def _conditions(*, initialized: bool, ready: bool, reason: str | None = None) -> list[dict[str, Any]]:
    now = _now()
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
        for volume in self.pod.volumes:
            make_private_dir(self.volumes_dir / volume.name, VOLUME_MODE)
        lease = self.agent.runtime.host.uids.lease()  # one host uid for every container of the pod
        try:
            self._run_containers(
                runnable[: len(self.pod.init_containers)], runnable[len(self.pod.init_containers) :], lease
            )
        finally:
            lease.release()

    def _run_containers(
        self, inits: list[ContainerPlan], mains: list[ContainerPlan], lease: UidLease
    ) -> None:
        started_s = self.agent.clock()
        deadline_s = self.pod.active_deadline_s
        budget_s = float(deadline_s) if deadline_s else DEFAULT_RUN_CAP_S
        self._patch_status({"startTime": _now(), "hostIP": "127.0.0.1", "podIP": "127.0.0.1"})
        done: list[dict[str, Any]] = []
        for index, plan in enumerate([*inits, *mains]):
            initializing = index < len(inits)
            self._report_running(inits, mains, done, initializing=initializing)
            remaining_s = max(budget_s - (self.agent.clock() - started_s), 0.001)
            outcome = self._run_one(plan, lease, remaining_s)
            done.append(_terminated(plan, outcome, self.uid))
            deadline_exceeded = outcome.stopped and deadline_s is not None and not self.cancel.is_set()
            if outcome.exit_code != 0 or self.cancel.is_set() or deadline_exceeded:
                self._report_end(inits, mains, done, deadline_exceeded=deadline_exceeded)
                return
        self._report_end(inits, mains, done, deadline_exceeded=False)

    def _report_running(
        self,
        inits: list[ContainerPlan],
        mains: list[ContainerPlan],
        done: list[dict[str, Any]],
        *,
        initializing: bool,
    ) -> None:
        running = {"running": {"startedAt": _now()}}
        statuses = [*done, _status([*inits, *mains][len(done)], self.uid, running)]
        pending = {"waiting": {"reason": "PodInitializing"}}
        self._patch_status(
            {
                "phase": "Pending" if initializing else "Running",
                "conditions": _conditions(initialized=not initializing, ready=not initializing),
                "initContainerStatuses": statuses[: len(inits)],
                "containerStatuses": statuses[len(inits) :]
                or [_status(plan, self.uid, pending) for plan in mains],
            }
        )

    def _run_one(self, plan: ContainerPlan, lease: UidLease, timeout_s: float) -> ContainerOutcome:
        key = (self.namespace, self.name, plan.name)
        self.agent.logs.open(key, self.uid)
        outcome = self.agent.runtime.run(
            plan.spec,
            lease,
            timeout_s=timeout_s,
            cancel=self.cancel,
            on_start=lambda pid: self.agent.record_pid(self.namespace, self.name, plan.name, pid),
        )
        self.agent.logs.finish(key, outcome.log)
        return outcome

    def _report_end(
        self,
        inits: list[ContainerPlan],
        mains: list[ContainerPlan],
        done: list[dict[str, Any]],
        *,
        deadline_exceeded: bool,
    ) -> None:
        succeeded = len(done) == len(inits) + len(mains) and all(
            status["state"]["terminated"]["exitCode"] == 0 for status in done
        )
        never_ran = {"waiting": {"reason": "PodInitializing"}}
        mains_done = done[len(inits) :] or [_status(plan, self.uid, never_ran) for plan in mains]
        status: dict[str, Any] = {
            "phase": "Succeeded" if succeeded else "Failed",
            "conditions": _conditions(
                initialized=len(done) >= len(inits), ready=False, reason="PodCompleted"
            ),
            "initContainerStatuses": done[: len(inits)],
            "containerStatuses": mains_done,
        }
        if deadline_exceeded:
            status["reason"] = "DeadlineExceeded"
            status["message"] = "Pod was active on the node longer than the specified deadline"
        self._patch_status(status)


class NodeAgent:
    def __init__(
        self, api: client.CoreV1Api, node_name: str, port: int, runtime: ContainerRuntime, state_dir: Path
    ) -> None:
        self.api = api
        self.node_name = node_name
        self.port = port
        self.runtime = runtime
        self.languages: dict[str, LanguageSpec] = {
            spec.image: spec for spec in load_registry(runtime.runner_dir.parent).all()
        }
        self.state_dir = state_dir
        # emptyDir volumes, where the pods' host uids can reach them (not under the 0700 state dir).
        self.volumes_dir = make_private_dir(get_settings().data_dir / "node-agent" / str(os.getpid()), 0o711)
        self.logs = LogStore()
        self.clock = time.monotonic
        self.stopping = threading.Event()
        self._runs: dict[str, PodRun] = {}
        self._lock = threading.Lock()

    # --- Node -------------------------------------------------------------------------------------
    def register_node(self) -> None:
        capacity = {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 1024}Ki",
            "ephemeral-storage": f"{shutil.disk_usage('/tmp').total // 1024}Ki",
            "pods": "110",
        }
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": NODE_ARCH.get(platform.machine(), platform.machine()),
        }
        body = client.V1Node(metadata=client.V1ObjectMeta(name=self.node_name, labels=labels))
        try:
            self.api.create_node(body)
        except client.ApiException as exc:
            if exc.status != 409:  # a restarted agent finds its Node: fine
                raise
        now = _now()
        ready = {"type": "Ready", "status": "True", "reason": "NodeAgentReady", "lastHeartbeatTime": now}
        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "conditions": [{**ready, "lastTransitionTime": now}],
        }
        self.api.patch_node_status(self.node_name, {"status": status}, _content_type=STRATEGIC_MERGE)
        node = self.api.read_node(self.node_name)
        taints = [
            t.to_dict() for t in (node.spec.taints if node.spec else None) or [] if t.key != NOT_READY_TAINT
        ]
        self.api.patch_node(
            self.node_name, {"spec": {"taints": taints or None}}, _content_type=STRATEGIC_MERGE
        )

    # --- Pods -------------------------------------------------------------------------------------
    def record_pid(self, namespace: str, pod: str, container: str, pid: int) -> None:
        path = self.state_dir / "pids" / namespace / pod / container
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(pid), encoding="ascii")

    def patch_pod_status(self, namespace: str, name: str, uid: str, status: dict[str, Any]) -> None:
        body = {"metadata": {"uid": uid}, "status": status}  # uid: never patch a namesake pod
        self.api.patch_namespaced_pod_status(name, namespace, body, _content_type=STRATEGIC_MERGE)

    def remove_pod(self, namespace: str, name: str, uid: str) -> None:
        """What a kubelet does once a deleted pod's containers are gone: delete it for good."""
        options = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
        )
        try:
            self.api.delete_namespaced_pod(name, namespace, body=options)
        except client.ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or a namesake with another uid
                raise

    def on_pod_event(self, kind: str, pod: PodView) -> None:
        with self._lock:
            run = self._runs.get(pod.uid)
            if kind == "DELETED":
                self._runs.pop(pod.uid, None)
            elif run is None and not pod.deleting and pod.phase == "Pending":
                run = self._runs[pod.uid] = PodRun(self, pod)
                run.thread.start()
                return
        if kind == "DELETED":
            self.logs.forget_pod(pod.namespace, pod.uid)
            if run is not None:
                run.cancel.set()
        elif pod.deleting:
            if run is not None:
                run.request_removal()
            else:
                self.remove_pod(pod.namespace, pod.name, pod.uid)

    def watch_pods(self) -> None:
        """List, then watch from that resourceVersion; relist when it expired (410) or the stream broke."""
        selector = f"spec.nodeName={self.node_name}"
        resource_version: str | None = None
        while not self.stopping.is_set():
            try:
                if resource_version is None:
                    listing = self.api.list_pod_for_all_namespaces(field_selector=selector)
                    for pod in listing.items:
                        self.on_pod_event("ADDED", PodView.of(pod))
                    resource_version = listing.metadata.resource_version if listing.metadata else None
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.api.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=resource_version,
                    timeout_seconds=WATCH_TIMEOUT_S,
                )
                for event in stream:
                    pod = event["object"]
                    resource_version = pod.metadata.resource_version
                    self.on_pod_event(event["type"], PodView.of(pod))
            except client.ApiException as exc:
                logger.warning("pod watch: %s; relisting", exc.reason)
                resource_version = None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                logger.warning("pod watch connection: %s; relisting", exc)
                resource_version = None
                self.stopping.wait(0.5)  # the apiserver may be restarting: don't spin

    def shutdown(self) -> None:
        self.stopping.set()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.cancel.set()
        for run in runs:
            run.thread.join(SHUTDOWN_JOIN_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--port", required=True, type=int, help="log endpoint port (the Node's kubelet port)")
    parser.add_argument("--tls-cert", required=True, type=Path)
    parser.add_argument("--tls-key", required=True, type=Path)
    parser.add_argument("--state-dir", required=True, type=Path, help="where the agent writes container pids")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(args.kubeconfig)))  # type: ignore[no-untyped-call]
    agent = NodeAgent(
        api, args.node_name, args.port, ContainerRuntime.from_settings(get_settings()), args.state_dir
    )
    server = serve_logs(agent.logs, args.port, args.tls_cert, args.tls_key)
    agent.register_node()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=agent.watch_pods, name="watch", daemon=True).start()
    logger.info("node %s ready, logs on https://127.0.0.1:%d", args.node_name, args.port)
    stop.wait()
    # Kill every container before exiting: no run may outlive the agent.
    agent.shutdown()
    server.shutdown()
    shutil.rmtree(agent.volumes_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
