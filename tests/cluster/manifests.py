"""Apply the repository's kustomize manifests (k8s/overlays/<env>) to a cluster, as `kubectl apply -k` would.

Rendering uses the kustomize binary built with the control plane; applying is server-side apply through
the official client, so no kubectl is needed. Like an operator, the harness fills in the overlay's admission
parameters: the test cluster's runner images come from TEST_IMAGE_REGISTRY (the node agent maps any image
to a runner by its last path segment, so the registry host is never contacted).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, dynamic

from functions.backends.kubernetes.constants import ADMISSION_PARAMS_CONFIGMAP
from tests.cluster.waits import wait_for

FIELD_MANAGER = "code-exec-tests"
NAMESPACE_READY_TIMEOUT_S = 60.0
ADMISSION_PROBE_INTERVAL_S = 0.05
# Where the test cluster's runner images "come from"; EXEC_RUNNER_IMAGE_REGISTRY for the service.
TEST_IMAGE_REGISTRY = "registry.invalid/code-exec"
TEST_ADMISSION_PARAMS = {"imagePrefix": f"{TEST_IMAGE_REGISTRY}/"}


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


def renamed(value: Any, old: str, new: str) -> Any:
    """Every string that is `old`, or starts with `old.` (the cluster-scoped names), with `new` instead."""
    if isinstance(value, dict):
        return {key: renamed(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item, old, new) for item in value]
    if isinstance(value, str) and (value == old or value.startswith(f"{old}.")):
        return new + value[len(old) :]
    return value


def with_admission_params(documents: list[dict[str, Any]], params: Mapping[str, str]) -> list[dict[str, Any]]:
    """The documents with `params` merged into the admission policy's ConfigMap."""
    return [
        {**doc, "data": {**doc.get("data", {}), **params}}
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == ADMISSION_PARAMS_CONFIGMAP
        else doc
        for doc in documents
    ]


def apply_overlay(
    api_client: client.ApiClient,
    kustomize: Path,
    overlay: Path,
    *,
    namespace: str | None = None,
    admission_params: Mapping[str, str] = TEST_ADMISSION_PARAMS,
) -> str:
    """Apply one overlay (it must define exactly one Namespace); its namespace once pods can be admitted.

    `namespace` renames the overlay's namespace (and the cluster-scoped objects named after it), so a test
    can have a runner namespace of its own to break. Pods are refused until their ServiceAccount exists, and
    the controller-manager creates `default` only after the namespace: wait for every ServiceAccount the
    pods may name.
    """
    documents = render(kustomize, overlay)
    namespaces = [str(doc["metadata"]["name"]) for doc in documents if doc["kind"] == "Namespace"]
    if len(namespaces) != 1:
        raise ValueError(f"{overlay} should define exactly one Namespace, found {namespaces}")
    if namespace is not None:
        documents = renamed(documents, namespaces[0], namespace)
        namespaces = [namespace]
    apply(api_client, with_admission_params(documents, admission_params))
    wanted = {"default"} | {doc["metadata"]["name"] for doc in documents if doc["kind"] == "ServiceAccount"}
    wait_for(
        client.CoreV1Api(api_client).list_namespaced_service_account,
        lambda items: wanted <= {sa.metadata.name for sa in items},
        timeout_s=NAMESPACE_READY_TIMEOUT_S,
        namespace=namespaces[0],
    )
    if any(doc["kind"] == "ValidatingAdmissionPolicyBinding" for doc in documents):
        wait_admission_policy(api_client, namespaces[0], in_force=True)
    return namespaces[0]


def wait_admission_policy(api_client: client.ApiClient, namespace: str, *, in_force: bool) -> None:
    """Until the namespace's admission policy refuses (or, removed, admits) a Job from a foreign registry.

    The apiserver loads policies, bindings and parameters through informers and signals nothing when a change
    takes effect, so this asks it the one way that shows: a server-side dry run of a probe. Polled, briefly.
    """
    probe = client.V1Job.from_dict(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "admission-probe"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "probe", "image": "admission-probe.invalid/probe:0"}],
                    }
                }
            },
        }
    )
    assert probe is not None
    batch = client.BatchV1Api(api_client)
    deadline_s = time.monotonic() + NAMESPACE_READY_TIMEOUT_S
    while time.monotonic() < deadline_s:
        try:
            batch.create_namespaced_job(namespace, probe, dry_run="All")
            refused = False
        except client.ApiException as exc:
            if "ValidatingAdmissionPolicy" not in str(exc.body):
                raise
            refused = True
        if refused == in_force:
            return
        threading.Event().wait(ADMISSION_PROBE_INTERVAL_S)
    state = "in force" if in_force else "gone"
    raise TimeoutError(
        f"the admission policy of {namespace} was not {state} within {NAMESPACE_READY_TIMEOUT_S} s"
    )
