"""Node agent: a TEST STAND-IN for the kubelet, running pods of the test cluster in the local sandbox.

It is not a kubelet and does not try to be one. It does just what the Job backend relies on:
- registers a Node (capacity, InternalIP 127.0.0.1, kubelet port) and removes the not-ready taint that
  admission puts on every new Node (there is no node-lifecycle controller to do it);
- watches the pods bound to it; maps each container's image to a language (last path segment without tag
  == language.json `image`) and runs that language's runner with the container's literal env (the task
  arrives as RUNNER_TASK_CHUNKS / RUNNER_TASK_i) in the local sandbox, under the container's memory limit;
  the image's entrypoint is always the runner, so command/args are not interpreted;
- reports what a kubelet would: waiting ErrImagePull for an image no language uses,
  CreateContainerConfigError for env it cannot resolve, Running with start time, then terminated with
  exit code, reason Completed/Error/OOMKilled and finish time, phase Succeeded/Failed; DeadlineExceeded
  when the pod's own activeDeadlineSeconds passes;
- on pod deletion (Job deleted, deadline, TTL) kills the run and removes the pod (grace period 0), as the
  kubelet does once containers are gone;
- serves container logs (node_logs) so `pods/log` works through the apiserver.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, utils, watch

from functions.backends.local.sandbox import SandboxOutcome, run_runner_sandboxed
from functions.core.languages import LanguageSpec, load_registry
from functions.settings import get_settings
from tests.cluster.node_logs import LogStore, serve_logs

logger = logging.getLogger("node-agent")

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# Without activeDeadlineSeconds a run still ends: the Job backend's pods always carry a deadline.
DEFAULT_RUN_CAP_S = 3600.0
WATCH_TIMEOUT_S = 60
SHUTDOWN_JOIN_S = 10.0
KILLED_EXIT_CODE = 137
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
# The label a kubelet gives its Node (Go's GOARCH names), so a pod's arch selector schedules here.
NODE_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_repository(image: str) -> str:
    """`registry:5000/team/code-exec-runner-python:tag@sha256:...` -> `code-exec-runner-python`."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def _conditions(*, ready: bool, reason: str | None = None) -> list[dict[str, Any]]:
    status = "True" if ready else "False"
    now = _now()
    ready_condition: dict[str, Any] = {"type": "Ready", "status": status, "lastTransitionTime": now}
    if reason:
        ready_condition["reason"] = reason
    return [
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
        ready_condition,
    ]


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    language: LanguageSpec
    env: dict[str, str]
    memory_limit_mb: int


@dataclass(frozen=True)
class PodView:
    """The fields of a pod the agent reads, checked once (the client's models make every field optional)."""

    namespace: str
    name: str
    uid: str
    phase: str
    deleting: bool
    containers: tuple[client.V1Container, ...]
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
            containers=tuple(spec.containers) if spec else (),
            active_deadline_s=spec.active_deadline_seconds if spec else None,
        )


class PodRun:
    """One pod on this node: runs its containers one after the other in a worker thread."""

    def __init__(self, agent: NodeAgent, pod: PodView) -> None:
        self.agent = agent
        self.namespace = pod.namespace
        self.name = pod.name
        self.uid = pod.uid
        self.pod = pod
        self.cancel = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)
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
        language = self.agent.languages.get(image_repository(image))
        if language is None:
            message = f"image {container.image!r} matches no runners/*/language.json 'image' on this node"
            return {"waiting": {"reason": "ErrImagePull", "message": message}}
        if any(var.value_from is not None for var in container.env or []):
            message = "the node agent runs only containers whose env values are literals"
            return {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
        limits = (container.resources.limits if container.resources else None) or {}
        memory = limits.get("memory")
        memory_mb = get_settings().default_memory_limit_mb
        if memory:
            memory_mb = math.ceil(utils.parse_quantity(memory) / 2**20)  # type: ignore[no-untyped-call]
        env = {var.name: var.value or "" for var in container.env or []}
        return ContainerPlan(container.name, image, language, env, memory_mb)

    def _container_status(self, name: str, image: str, state: dict[str, Any]) -> dict[str, Any]:
        running = "running" in state
        return {
            "name": name,
            "image": image,
            "imageID": f"code-exec-node-agent://{image}",
            "containerID": f"code-exec-node-agent://{self.uid}/{name}",
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": state,
        }

    def _run(self) -> None:
        try:
            self._run_containers()
        except client.ApiException as exc:
            if exc.status != 404:  # the pod went away under us: nothing left to report
                logger.exception("pod %s/%s", self.namespace, self.name)
        except Exception as exc:  # a pod must never stay Running because the agent failed
            logger.exception("pod %s/%s: the node agent failed", self.namespace, self.name)
            with contextlib.suppress(client.ApiException):
                self._patch_status({"phase": "Failed", "reason": "NodeAgentError", "message": str(exc)})
        finally:
            with self._lock:
                self._finished = True
                remove = self._removal_requested
            if remove:
                self.agent.remove_pod(self.namespace, self.name, self.uid)

    def _run_containers(self) -> None:
        plans = [self._plan(container) for container in self.pod.containers]
        waiting = [
            self._container_status(c.name, c.image or "", plan)
            for c, plan in zip(self.pod.containers, plans, strict=True)
            if not isinstance(plan, ContainerPlan)
        ]
        if waiting:
            # Like a kubelet that cannot pull: the pod stays Pending until someone deletes it.
            self._patch_status({"phase": "Pending", "containerStatuses": waiting})
            return
        runnable = [plan for plan in plans if isinstance(plan, ContainerPlan)]
        started_at = _now()
        started_s = self.agent.clock()
        running = {"running": {"startedAt": started_at}}
        self._patch_status(
            {
                "phase": "Running",
                "startTime": started_at,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "conditions": _conditions(ready=True),
                "containerStatuses": [self._container_status(p.name, p.image, running) for p in runnable],
            }
        )
        deadline_s = self.pod.active_deadline_s
        budget_s = float(deadline_s) if deadline_s else DEFAULT_RUN_CAP_S
        statuses: list[dict[str, Any]] = []
        deadline_exceeded = False
        for plan in runnable:
            remaining_s = max(budget_s - (self.agent.clock() - started_s), 0.001)
            outcome = self._run_one(plan, remaining_s)
            deadline_exceeded = deadline_exceeded or (outcome.timed_out and deadline_s is not None)
            statuses.append(self._terminated(plan, outcome, started_at))
            if self.cancel.is_set() or deadline_exceeded:
                break
        self._report_end(statuses, deadline_exceeded=deadline_exceeded)

    def _run_one(self, plan: ContainerPlan, wall_timeout_s: float) -> SandboxOutcome:
        key = (self.namespace, self.name, plan.name)
        self.agent.logs.open(key, self.uid)
        outcome = run_runner_sandboxed(
            language=plan.language,
            runner_env=plan.env,
            stdin=None,
            memory_limit_mb=plan.memory_limit_mb,
            max_processes=get_settings().max_processes,
            wall_timeout_s=wall_timeout_s,
            cancel=self.cancel,
        )
        # A kubelet on cgroup v2 (memory.oom.group) kills the whole container on an OOM: no report survives.
        self.agent.logs.finish(key, b"" if outcome.oom_killed else outcome.stdout + outcome.stderr)
        return outcome

    def _terminated(self, plan: ContainerPlan, outcome: SandboxOutcome, started_at: str) -> dict[str, Any]:
        killed = outcome.cancelled or outcome.timed_out or outcome.oom_killed
        exit_code = KILLED_EXIT_CODE if killed else outcome.exit_code
        reason = "OOMKilled" if outcome.oom_killed else ("Completed" if exit_code == 0 else "Error")
        terminated = {"exitCode": exit_code, "reason": reason, "startedAt": started_at, "finishedAt": _now()}
        return self._container_status(plan.name, plan.image, {"terminated": terminated})

    def _report_end(self, statuses: list[dict[str, Any]], *, deadline_exceeded: bool) -> None:
        succeeded = all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses) and not (
            self.cancel.is_set() or deadline_exceeded
        )
        status: dict[str, Any] = {
            "phase": "Succeeded" if succeeded else "Failed",
            "conditions": _conditions(ready=False, reason="PodCompleted"),
            "containerStatuses": statuses,
        }
        if deadline_exceeded:
            status["reason"] = "DeadlineExceeded"
            status["message"] = "Pod was active on the node longer than the specified deadline"
        self._patch_status(status)


class NodeAgent:
    def __init__(self, api: client.CoreV1Api, node_name: str, port: int, runners_dir: Path) -> None:
        self.api = api
        self.node_name = node_name
        self.port = port
        self.languages = {spec.image: spec for spec in load_registry(runners_dir).all()}
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
    parser.add_argument("--runners-dir", type=Path, default=get_settings().runners_dir)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(args.kubeconfig)))  # type: ignore[no-untyped-call]
    agent = NodeAgent(api, args.node_name, args.port, args.runners_dir)
    server = serve_logs(agent.logs, args.port, args.tls_cert, args.tls_key)
    agent.register_node()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=agent.watch_pods, name="watch", daemon=True).start()
    logger.info("node %s ready, logs on https://127.0.0.1:%d", args.node_name, args.port)
    stop.wait()
    # Kill every sandbox before exiting: no run may outlive the agent.
    agent.shutdown()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
