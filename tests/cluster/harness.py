"""Bring a real Kubernetes control plane up on this machine, and take it down again.

etcd -> kube-apiserver -> kube-controller-manager -> kube-scheduler -> node agent (ours, a kubelet
stand-in that runs pods in the local sandbox). Stopped in reverse order: the apiserver hangs on SIGTERM
when etcd is already gone. Every port is chosen free at start; every identity is a client certificate
from a throwaway CA.

Every component is a child of the process that started it, which waits for it once stopped (nothing is
left <defunct>) and takes it along if it dies (parent-death signal). For `make cluster-up` that process is a
small supervisor (`supervise`, detached, listed first in the state file): it outlives the `up` command,
reaps each component `down` stops, and exits when none is left.

CLI (for `make cluster-up` / `make cluster-down`):
    python -m tests.cluster.harness up   [--dir .cluster] [--overlay k8s/overlays/dev | --overlay none]
    python -m tests.cluster.harness down [--dir .cluster]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client, config

from functions.backends.kubernetes.constants import CONTROLLER_GROUP
from tests.cluster import components, manifests, processes
from tests.cluster.build import BuildFailedError, GoMissingError, ensure_binaries
from tests.cluster.components import NODE_NAME
from tests.cluster.pki import CertificateAuthority, CertPair, write_service_account_keys
from tests.cluster.processes import ClusterStartError, ProcessRecord

__all__ = ["CONTROLLER_GROUP", "NODE_NAME"]  # re-exported: the tests name them through the harness

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".cluster"
DEV_OVERLAY = REPO_ROOT / "k8s" / "overlays" / "dev"
STATE_FILE = "state.json"
SUPERVISOR = "supervisor"

ADMIN_USER = "code-exec-admin"
# Must match the RoleBinding subject in k8s/base (CONTROLLER_GROUP: the EKS access entry's kubernetesGroups).
CONTROLLER_USER = "code-exec-controller"
COMPONENT_READY_TIMEOUT_S = 60.0
# `down` lets the supervisor exit by itself once it has reaped the components, before signalling it.
SUPERVISOR_EXIT_WAIT_S = 5.0


@dataclass(frozen=True)
class ClusterInfo:
    """What a running cluster offers its users (the pytest fixtures hand this out)."""

    state_dir: Path
    server_url: str
    ca_path: Path
    admin_kubeconfig: Path
    controller_kubeconfig: Path
    node_name: str
    records: tuple[ProcessRecord, ...]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_kubeconfig(path: Path, server_url: str, ca_path: Path, identity: CertPair, user: str) -> Path:
    """A self-contained kubeconfig (certificates inline), so it can be copied anywhere."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "code-exec-test",
                "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_path.read_bytes())},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(identity.cert_pem),
                    "client-key-data": _b64(identity.key_pem),
                },
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": "code-exec-test", "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    path.chmod(0o600)
    return path


class _Launcher:
    """Starts components one by one, remembering each so a failed start can be undone.

    Each component is this process's child, killed with it (parent-death signal). `listed_first` is a
    record `down` must stop after the components (the supervisor, which is not ours to stop here).
    """

    def __init__(self, state_dir: Path, *, listed_first: ProcessRecord | None = None) -> None:
        self.state_dir = state_dir
        self.listed_first = [listed_first] if listed_first else []
        self.records: list[ProcessRecord] = []
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)

    def launch(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        log_path = self.state_dir / "logs" / f"{name}.log"
        _, record = processes.spawn(name, argv, log_path, detach=False, cwd=REPO_ROOT, env=env)
        self.records.append(record)
        _write_state(self.state_dir, [*self.listed_first, *self.records])
        return record

    def stop_all(self) -> None:
        for record in reversed(self.records):
            processes.stop(record)
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)


def _write_state(state_dir: Path, records: list[ProcessRecord]) -> None:
    document = {"processes": [record.to_json() for record in records]}
    (state_dir / STATE_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")


def _read_state(state_dir: Path) -> list[ProcessRecord]:
    try:
        document = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [ProcessRecord.from_json(item) for item in document["processes"]]


def _issue_certificates(pki: Path) -> dict[str, CertPair]:
    ca = CertificateAuthority(pki)
    write_service_account_keys(pki)
    for stem in ("apiserver", "controller-manager", "scheduler", "node-agent-serving"):
        ca.issue_serving(stem, f"code-exec-{stem}")
    return {
        "admin": ca.issue_client("admin", ADMIN_USER, ("system:masters",)),
        "controller": ca.issue_client("controller", CONTROLLER_USER, (CONTROLLER_GROUP,)),
        "controller-manager": ca.issue_client("cm-client", "system:kube-controller-manager"),
        "scheduler": ca.issue_client("scheduler-client", "system:kube-scheduler"),
        # The agent edits its Node's taints, which NodeRestriction forbids a node identity: an admin it is.
        "node-agent": ca.issue_client("node-agent-client", "code-exec-node-agent", ("system:masters",)),
        "apiserver-kubelet-client": ca.issue_client("apiserver-kubelet-client", "kube-apiserver"),
    }


def api_client_for(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient acting as the identity in `kubeconfig` (close it, or use it as a context manager)."""
    api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return api_client


def node_state_dir(state_dir: Path) -> Path:
    """Where the node agent writes what tests may read (the host pid of each container)."""
    return state_dir / "node"


def _node_ready(api: client.CoreV1Api) -> bool:
    try:
        node = api.read_node(NODE_NAME)
    except client.ApiException:
        return False
    conditions = {c.type: c.status for c in (node.status.conditions if node.status else None) or []}
    return conditions.get("Ready") == "True" and not (node.spec and node.spec.taints)


def _start_components(launcher: _Launcher, bin_dir: Path, identities: dict[str, CertPair]) -> ClusterInfo:
    state_dir = launcher.state_dir
    pki = state_dir / "pki"
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server_url = f"https://127.0.0.1:{api_port}"
    ca_path = pki / "ca.crt"
    kubeconfigs = {
        name: write_kubeconfig(state_dir / f"{name}.kubeconfig", server_url, ca_path, pair, name)
        for name, pair in identities.items()
        if name != "apiserver-kubelet-client"
    }
    tls = ssl.create_default_context(cafile=str(ca_path))

    etcd = launcher.launch("etcd", components.etcd_argv(bin_dir, state_dir / "etcd", etcd_port, peer_port))
    processes.wait_until(etcd, processes.http_ok(f"http://127.0.0.1:{etcd_port}/health"), "etcd health", 30)
    apiserver = launcher.launch(
        "kube-apiserver", components.apiserver_argv(bin_dir, pki, etcd_port, api_port)
    )
    processes.wait_until(apiserver, processes.https_ok(f"{server_url}/readyz", tls), "readyz", 60)
    for name, argv_for, kubeconfig in (
        ("kube-controller-manager", components.controller_manager_argv, kubeconfigs["controller-manager"]),
        ("kube-scheduler", components.scheduler_argv, kubeconfigs["scheduler"]),
    ):
        port = free_port()
        record = launcher.launch(name, argv_for(bin_dir, pki, kubeconfig, port))
        check = processes.https_ok(f"https://127.0.0.1:{port}/healthz", tls)
        processes.wait_until(record, check, "healthz", COMPONENT_READY_TIMEOUT_S)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    agent_argv = components.node_agent_argv(
        pki, kubeconfigs["node-agent"], free_port(), node_state_dir(state_dir)
    )
    agent = launcher.launch("node-agent", agent_argv, env=env)
    with api_client_for(kubeconfigs["admin"]) as admin:
        core = client.CoreV1Api(admin)
        processes.wait_until(agent, lambda: _node_ready(core), "Ready node", COMPONENT_READY_TIMEOUT_S)
    return _cluster_info(state_dir, server_url, launcher.records)


def _cluster_info(state_dir: Path, server_url: str, records: list[ProcessRecord]) -> ClusterInfo:
    return ClusterInfo(
        state_dir=state_dir,
        server_url=server_url,
        ca_path=state_dir / "pki" / "ca.crt",
        admin_kubeconfig=state_dir / "admin.kubeconfig",
        controller_kubeconfig=state_dir / "controller.kubeconfig",
        node_name=NODE_NAME,
        records=tuple(records),
    )


def _prepare(state_dir: Path) -> None:
    """An empty state folder; refuses while a cluster recorded there still runs."""
    if any(processes.is_alive(record) for record in _read_state(state_dir)):
        raise ClusterStartError(f"a cluster from {state_dir} is still running: stop it first")
    shutil.rmtree(state_dir, ignore_errors=True)
    (state_dir / "pki").mkdir(parents=True)
    state_dir.chmod(0o700)


def _launch(state_dir: Path, *, listed_first: ProcessRecord | None = None) -> ClusterInfo:
    bin_dir = ensure_binaries()
    identities = _issue_certificates(state_dir / "pki")
    launcher = _Launcher(state_dir, listed_first=listed_first)
    try:
        return _start_components(launcher, bin_dir, identities)
    except BaseException:
        launcher.stop_all()
        raise


def start_cluster(state_dir: Path) -> ClusterInfo:
    """Build (once) and start the whole cluster under `state_dir`, as children of this process.

    Raises ClusterStartError. The cluster dies with this process; `stop_cluster` stops it before that.
    """
    _prepare(state_dir)
    return _launch(state_dir)


def stop_cluster(state_dir: Path) -> list[str]:
    """Stop every recorded process in reverse start order; returns the names it found running."""
    records = _read_state(state_dir)
    running = [record.name for record in records if processes.is_alive(record)]
    for record in reversed(records):
        if record.name == SUPERVISOR:
            processes.wait_exit(record, SUPERVISOR_EXIT_WAIT_S)  # it exits once it has reaped the rest
        processes.stop(record)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(state_dir / "etcd", ignore_errors=True)
    return running


def _start_detached(state_dir: Path) -> ClusterInfo:
    """Start the cluster under a detached supervisor; return once it is ready (or raise, leaving nothing)."""
    _prepare(state_dir)
    (state_dir / "logs").mkdir()
    ensure_binaries()  # a build failure is reported here, not in the supervisor's log
    read_fd, write_fd = os.pipe()
    try:
        argv = [sys.executable, "-m", "tests.cluster.harness", SUPERVISOR, "--dir", str(state_dir)]
        _, supervisor = processes.spawn(
            SUPERVISOR,
            [*argv, f"--ready-fd={write_fd}"],
            state_dir / "logs" / f"{SUPERVISOR}.log",
            detach=True,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            pass_fds=(write_fd,),
        )
    finally:
        os.close(write_fd)
    # One JSON line once the cluster is ready; end of file without it if the supervisor failed or died.
    with os.fdopen(read_fd, encoding="utf-8") as ready:
        message = ready.read()
    if not message.strip():
        processes.stop(supervisor)
        stop_cluster(state_dir)
        raise ClusterStartError(f"the cluster did not start:\n{processes.log_tail(supervisor)}")
    return _cluster_info(state_dir, json.loads(message)["server_url"], _read_state(state_dir))


def _supervise(state_dir: Path, ready_fd: int) -> int:
    """Start the cluster as this process's children, report readiness on `ready_fd`, reap until none is left."""
    own = processes.own_record(SUPERVISOR, state_dir / "logs" / f"{SUPERVISOR}.log")
    with os.fdopen(ready_fd, "w", encoding="utf-8") as ready:
        info = _launch(state_dir, listed_first=own)
        ready.write(json.dumps({"server_url": info.server_url}) + "\n")
    while True:
        try:
            os.wait()  # blocks until one component exits (`down` stops them), and reaps it
        except ChildProcessError:
            return 0


def _up(state_dir: Path, overlay: Path | None) -> int:
    started_s = time.monotonic()
    try:
        info = _start_detached(state_dir)
        namespace = None
        if overlay is not None:
            with api_client_for(info.admin_kubeconfig) as admin:
                namespace = manifests.apply_overlay(admin, ensure_binaries() / "kustomize", overlay)
    except (ClusterStartError, GoMissingError, BuildFailedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseException:
        stop_cluster(state_dir)
        raise
    print(f"cluster up in {time.monotonic() - started_s:.1f} s at {info.server_url}")
    print(f"  admin kubeconfig:      {info.admin_kubeconfig}")
    print(f"  controller kubeconfig: {info.controller_kubeconfig}")
    print(f"                         (user {CONTROLLER_USER}, group {CONTROLLER_GROUP})")
    print(f"  namespace:             {namespace or '(no overlay applied)'}")
    print(f"  logs:                  {state_dir / 'logs'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("action", choices=["up", "down", SUPERVISOR])
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_STATE_DIR, help="state folder (kubeconfigs, logs)"
    )
    parser.add_argument(
        "--overlay", default=str(DEV_OVERLAY), help="kustomize overlay applied after start, or 'none'"
    )
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # `supervise`: internal
    args = parser.parse_args(argv)
    state_dir = args.dir.resolve()
    if args.action == SUPERVISOR:
        return _supervise(state_dir, args.ready_fd)
    if args.action == "up":
        return _up(state_dir, None if args.overlay == "none" else Path(args.overlay))
    stopped = stop_cluster(state_dir)
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
