"""The command line of each cluster component (harness.py starts them in this order)."""

from __future__ import annotations

import sys
from pathlib import Path

NODE_NAME = "code-exec-node"
SERVICE_CIDR = "10.96.0.0/24"
ADMISSION_PLUGINS = "NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,ResourceQuota,NodeRestriction"
CONTROLLERS = (
    "job-controller,ttl-after-finished-controller,garbage-collector-controller,namespace-controller,"
    "serviceaccount-controller,serviceaccount-token-controller,resourcequota-controller,"
    "root-ca-certificate-publisher-controller,pod-garbage-collector-controller"
)


def etcd_argv(bin_dir: Path, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    return [
        str(bin_dir / "etcd"),
        f"--data-dir={data_dir}",
        f"--listen-client-url=http://127.0.0.1:{client_port}",
        f"--listen-peer-url=http://127.0.0.1:{peer_port}",
    ]


def apiserver_argv(bin_dir: Path, pki: Path, etcd_port: int, port: int) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        f"--enable-admission-plugins={ADMISSION_PLUGINS}",
        # Privileged containers pass the apiserver's own check, so PodSecurity is what rejects them.
        "--allow-privileged=true",
        # The node agent's logs endpoint: 127.0.0.1 from the Node's InternalIP, its cert checked.
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        # The "kubernetes" Service endpoint would be 127.0.0.1, which endpoint validation refuses.
        "--endpoint-reconciler-type=none",
        "--profiling=false",
    ]


def _api_client_component_argv(
    binary: Path, pki: Path, kubeconfig: Path, port: int, *, cert_stem: str, extra: list[str]
) -> list[str]:
    """controller-manager and scheduler: an apiserver client serving its health on a TLS port of its own."""
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki / f'{cert_stem}.crt'}",
        f"--tls-private-key-file={pki / f'{cert_stem}.key'}",
        "--leader-elect=false",
        "--profiling=false",
        *extra,
    ]


def controller_manager_argv(bin_dir: Path, pki: Path, kubeconfig: Path, port: int) -> list[str]:
    extra = [
        f"--controllers={CONTROLLERS}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        # Each controller acts as its own service account, under its bootstrap RBAC role, as in a real cluster.
        "--use-service-account-credentials=true",
    ]
    binary = bin_dir / "kube-controller-manager"
    return _api_client_component_argv(
        binary, pki, kubeconfig, port, cert_stem="controller-manager", extra=extra
    )


def scheduler_argv(bin_dir: Path, pki: Path, kubeconfig: Path, port: int) -> list[str]:
    binary = bin_dir / "kube-scheduler"
    return _api_client_component_argv(binary, pki, kubeconfig, port, cert_stem="scheduler", extra=[])


def node_agent_argv(pki: Path, kubeconfig: Path, port: int, state_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.cluster.node_agent",
        f"--kubeconfig={kubeconfig}",
        f"--node-name={NODE_NAME}",
        f"--port={port}",
        f"--tls-cert={pki / 'node-agent-serving.crt'}",
        f"--tls-key={pki / 'node-agent-serving.key'}",
        f"--state-dir={state_dir}",
    ]
