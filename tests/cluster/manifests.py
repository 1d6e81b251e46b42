"""Apply the repository's kustomize manifests (k8s/overlays/<env>) to a cluster, as `kubectl apply -k` would.

Rendering uses the kustomize binary built with the control plane; applying is server-side apply through
the official client, so no kubectl is needed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, dynamic

from tests.cluster.waits import wait_for

FIELD_MANAGER = "code-exec-tests"
NAMESPACE_READY_TIMEOUT_S = 60.0


def render(kustomize: Path, kustomization_dir: Path) -> list[dict[str, Any]]:
    """`kustomize build DIR` as a list of objects, in kustomize's order (namespaces first)."""
    try:
        result = subprocess.run(
            [str(kustomize), "build", str(kustomization_dir)], capture_output=True, text=True, check=True
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"kustomize build {kustomization_dir} failed:\n{exc.stderr}") from exc
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def apply(api_client: client.ApiClient, documents: list[dict[str, Any]]) -> list[str]:
    """Server-side apply every object; returns `Kind/name` of each, for messages."""
    dyn = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]  # untyped module
    applied = []
    for document in documents:
        resource = dyn.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        dyn.server_side_apply(  # type: ignore[no-untyped-call]
            resource, body=document, field_manager=FIELD_MANAGER, force_conflicts=True
        )
        applied.append(f"{document['kind']}/{document['metadata']['name']}")
    return applied


def apply_overlay(api_client: client.ApiClient, kustomize: Path, overlay: Path) -> str:
    """Apply one overlay (it must define exactly one Namespace); its namespace once pods can be admitted.

    Pods are refused until their ServiceAccount exists, and the controller-manager creates `default`
    only after the namespace: wait for every ServiceAccount the pods may name.
    """
    documents = render(kustomize, overlay)
    namespaces = [str(doc["metadata"]["name"]) for doc in documents if doc["kind"] == "Namespace"]
    if len(namespaces) != 1:
        raise ValueError(f"{overlay} should define exactly one Namespace, found {namespaces}")
    apply(api_client, documents)
    wanted = {"default"} | {doc["metadata"]["name"] for doc in documents if doc["kind"] == "ServiceAccount"}
    wait_for(
        client.CoreV1Api(api_client).list_namespaced_service_account,
        lambda items: wanted <= {sa.metadata.name for sa in items},
        timeout_s=NAMESPACE_READY_TIMEOUT_S,
        namespace=namespaces[0],
    )
    return namespaces[0]
