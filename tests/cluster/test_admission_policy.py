"""The admission guardrails of k8s/base (ValidatingAdmissionPolicy + binding) on the real apiserver.

Every Job here starts as the one the service builds (the real job builder, the test cluster's registry) and
is then changed in one way. Creates are server-side dry runs as the controller identity, so the whole
admission chain runs and nothing is created; the few that break the namespace itself get one of their own.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from functions.backends.kubernetes.constants import ADMISSION_PARAMS_CONFIGMAP
from functions.backends.kubernetes.job_builder import JobTemplate, build_job
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.spec import prepare_run
from functions.settings import Settings
from functions.wiring import sync_policy
from tests.cluster.fixtures import RunnerNamespaces
from tests.cluster.manifests import TEST_ADMISSION_PARAMS, TEST_IMAGE_REGISTRY

pytestmark = pytest.mark.cluster

PodSpec = dict[str, Any]
Change = Callable[[PodSpec], None]


def our_job(namespace: str, **settings: Any) -> dict[str, Any]:
    """The Job the service would create for a hello world in `namespace`, as a plain dict."""
    service_settings = Settings(
        k8s_namespace=namespace, runner_image_registry=TEST_IMAGE_REGISTRY, **settings
    )
    request = ExecuteRequest(language="python", code="print(1)", encoding="text")
    task = prepare_run(
        request, load_registry(service_settings.runners_dir), sync_policy(service_settings)
    ).task
    job = build_job(task, JobTemplate.from_settings(service_settings), now_s=time.time())
    document: dict[str, Any] = client.ApiClient().sanitize_for_serialization(job)  # type: ignore[no-untyped-call]
    return document


def create_dry_run(api_client: client.ApiClient, namespace: str, job: dict[str, Any]) -> None:
    body = client.V1Job.from_dict(job)
    assert body is not None
    client.BatchV1Api(api_client).create_namespaced_job(namespace, body, dry_run="All")


def refusal(api_client: client.ApiClient, namespace: str, job: dict[str, Any]) -> str:
    """The apiserver's message for a Job it refuses (fails the test if it admits it)."""
    with pytest.raises(client.ApiException) as raised:
        create_dry_run(api_client, namespace, job)
    assert raised.value.status == 422, raised.value.body
    return str(raised.value.body)


def runner(spec: PodSpec) -> dict[str, Any]:
    container: dict[str, Any] = spec["containers"][0]
    return container


def security(spec: PodSpec) -> dict[str, Any]:
    context: dict[str, Any] = runner(spec)["securityContext"]
    return context


def add_init_container(**changes: Any) -> Change:
    """A `compile` init container like the runner container, with `changes` to it."""

    def change(spec: PodSpec) -> None:
        init = {**copy.deepcopy(runner(spec)), "name": "compile", **changes}
        spec["initContainers"] = [init]

    return change


def _privileged(spec: PodSpec) -> None:
    security(spec).update(privileged=True, allowPrivilegeEscalation=True)


def _token_volume(spec: PodSpec) -> None:
    projection = {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
    spec["volumes"].append({"name": "token", "projected": {"sources": [projection]}})
    runner(spec)["volumeMounts"].append({"name": "token", "mountPath": "/var/run/token"})


def _host_path(spec: PodSpec) -> None:
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})


REFUSED: list[Any] = [
    pytest.param(
        lambda s: runner(s).update(image="docker.io/library/python:3"),
        "runner registry prefix",
        id="foreign-image",
    ),
    pytest.param(
        lambda s: runner(s).update(image="code-exec-runner-python:latest"),
        "runner registry prefix",
        id="image-without-registry",
    ),
    pytest.param(
        add_init_container(image="docker.io/library/gcc:12"),
        "runner registry prefix",
        id="init-container-foreign-image",
    ),
    pytest.param(_privileged, "may not be privileged", id="privileged-container"),
    pytest.param(
        lambda s: s.update(automountServiceAccountToken=True),
        "automountServiceAccountToken",
        id="mounted-token",
    ),
    pytest.param(
        lambda s: s.pop("automountServiceAccountToken"), "automountServiceAccountToken", id="token-by-default"
    ),
    pytest.param(_token_volume, "only emptyDir volumes", id="projected-token-volume"),
    pytest.param(_host_path, "only emptyDir volumes", id="host-path"),
    pytest.param(lambda s: s.update(hostNetwork=True), "host namespaces", id="host-network"),
    pytest.param(lambda s: s.update(hostPID=True), "host namespaces", id="host-pid"),
    pytest.param(
        lambda s: runner(s).update(ports=[{"containerPort": 80, "hostPort": 80}]),
        "host ports",
        id="host-port",
    ),
    pytest.param(
        lambda s: s.update(serviceAccountName="default"), "service account", id="other-service-account"
    ),
    pytest.param(lambda s: security(s).update(runAsUser=0), "non-root", id="root-user"),
    pytest.param(
        lambda s: security(s).update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem",
        id="writable-root",
    ),
    pytest.param(
        add_init_container(securityContext={"runAsNonRoot": True, "allowPrivilegeEscalation": False}),
        "readOnlyRootFilesystem",
        id="init-container-not-hardened",
    ),
    pytest.param(
        lambda s: security(s).update(capabilities={"drop": ["ALL"], "add": ["NET_RAW"]}),
        "capabilities",
        id="capability-added",
    ),
    pytest.param(lambda s: runner(s)["resources"].pop("limits"), "limits", id="no-limits"),
]


@pytest.mark.parametrize(("change", "reason"), REFUSED)
def test_a_job_unlike_ours_is_refused_with_the_rule_it_breaks(
    cluster_namespace: str, controller_api_client: client.ApiClient, change: Change, reason: str
) -> None:
    # Given the Job the service builds, changed in one way
    job = our_job(cluster_namespace)
    change(job["spec"]["template"]["spec"])
    # When the controller identity creates it, Then admission refuses it and names the broken rule
    message = refusal(controller_api_client, cluster_namespace, job)
    assert "ValidatingAdmissionPolicy" in message
    assert reason in message


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda _: None, id="as-built"),
        pytest.param(add_init_container(), id="with-a-hardened-init-container"),
    ],
)
def test_the_job_the_service_builds_is_admitted(
    cluster_namespace: str, controller_api_client: client.ApiClient, change: Change
) -> None:
    # Given the Job the real job builder makes (optionally with a compile step held to the same rules)
    job = our_job(cluster_namespace)
    change(job["spec"]["template"]["spec"])
    # When the controller identity creates it, Then it is admitted
    create_dry_run(controller_api_client, cluster_namespace, job)


def test_a_pod_is_checked_too_even_from_an_admin_and_without_pod_security(
    runner_namespaces: RunnerNamespaces, admin_api_client: client.ApiClient
) -> None:
    # Given a runner namespace whose Pod Security labels were removed
    namespace = runner_namespaces()
    core = client.CoreV1Api(admin_api_client)
    labels = {f"pod-security.kubernetes.io/{mode}": None for mode in ("enforce", "audit", "warn")}
    core.patch_namespace(namespace, {"metadata": {"labels": labels}})
    # When an admin creates a privileged pod from our own pod template
    spec = our_job(namespace)["spec"]["template"]["spec"]
    _privileged(spec)
    pod = client.V1Pod.from_dict({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec})
    assert pod is not None
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod(namespace, pod, dry_run="All")
    # Then the admission policy still refuses it
    assert raised.value.status == 422
    assert "may not be privileged" in str(raised.value.body)


def test_a_namespace_without_the_policy_parameters_admits_nothing(
    runner_namespaces: RunnerNamespaces,
    admin_api_client: client.ApiClient,
    controller_api_client: client.ApiClient,
) -> None:
    # Given a runner namespace whose admission parameters were deleted
    namespace = runner_namespaces()
    client.CoreV1Api(admin_api_client).delete_namespaced_config_map(ADMISSION_PARAMS_CONFIGMAP, namespace)
    # When the service creates its own Job, Then it is refused: the guardrails fail closed
    message = refusal(controller_api_client, namespace, our_job(namespace))
    assert "ValidatingAdmissionPolicy" in message


def test_a_configured_runtime_class_is_required(
    runner_namespaces: RunnerNamespaces, controller_api_client: client.ApiClient
) -> None:
    # Given a runner namespace whose parameters name a RuntimeClass
    namespace = runner_namespaces({**TEST_ADMISSION_PARAMS, "runtimeClassName": "gvisor"})
    # When the service's Job does not use it, Then it is refused; with it, it is admitted
    assert 'RuntimeClass \\"gvisor\\"' in refusal(controller_api_client, namespace, our_job(namespace))
    create_dry_run(controller_api_client, namespace, our_job(namespace, k8s_runtime_class_name="gvisor"))
