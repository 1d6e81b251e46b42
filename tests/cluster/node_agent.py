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
import logging
import os
import platform
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch

from functions.backends.local.boxes import make_private_dir
from functions.core.languages import LanguageSpec, load_registry
from functions.settings import get_settings
from tests.cluster.containers import ContainerRuntime
from tests.cluster.node_logs import LogStore, serve_logs
from tests.cluster.node_pods import PodRun, PodView, now_timestamp

logger = logging.getLogger("node-agent")

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
WATCH_TIMEOUT_S = 60
SHUTDOWN_JOIN_S = 10.0
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
# The label a kubelet gives its Node (Go's GOARCH names), so a pod's arch selector schedules here.
NODE_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


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
        now = now_timestamp()
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
