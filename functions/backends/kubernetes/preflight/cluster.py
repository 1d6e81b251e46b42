"""What the runner namespace must hold, read as the operator: Pod Security, NetworkPolicy, quota, limits,
and the RuntimeClass the service is configured for."""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiException, CoreV1Api, NetworkingV1Api, NodeV1Api, V1NetworkPolicy
from kubernetes.utils import parse_quantity

from functions.backends.kubernetes.job_builder import JobTemplate, container_memory_mb
from functions.backends.kubernetes.preflight.model import (
    APPLY_OVERLAY,
    CheckResult,
    Context,
    Status,
    failed,
    passed,
)
from functions.backends.kubernetes.retry import HTTP_NOT_FOUND
from functions.core.languages import load_registry
from functions.core.steps import compile_step, run_step

PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
JOB_COUNT_QUOTA = "count/jobs.batch"
MEBIBYTE = 2**20


def namespace_check(context: Context) -> CheckResult:
    name = "namespace"
    try:
        namespace = CoreV1Api(context.operator).read_namespace(context.namespace)
    except ApiException as exc:
        if exc.status != HTTP_NOT_FOUND:
            raise
        return failed(name, f"namespace {context.namespace} does not exist", APPLY_OVERLAY)
    labels = (namespace.metadata.labels if namespace.metadata else None) or {}
    enforce = labels.get(PSA_ENFORCE)
    if enforce != "restricted":
        return failed(
            name,
            f"{context.namespace} enforces Pod Security {enforce or 'nothing'} (label {PSA_ENFORCE} "
            f"is {enforce!r}): a pod may run privileged or as root there",
            f"kubectl label namespace {context.namespace} {PSA_ENFORCE}=restricted --overwrite, or "
            f"{APPLY_OVERLAY}",
        )
    version = labels.get(PSA_ENFORCE_VERSION, "latest")
    return passed(name, f"{context.namespace} enforces Pod Security restricted ({version})")


def denies_all_traffic(policy: V1NetworkPolicy) -> bool:
    """Selects every pod of the namespace, for ingress and egress, and allows nothing."""
    spec = policy.spec
    if spec is None:
        return False
    selector = spec.pod_selector
    selects_all = selector is None or not (selector.match_labels or selector.match_expressions)
    types = set(spec.policy_types or ())
    return selects_all and {"Ingress", "Egress"} <= types and not spec.ingress and not spec.egress


def allowing_policies(policies: list[V1NetworkPolicy]) -> list[str]:
    """Names of the policies with any allow rule: policies add up, so one rule opens what deny-all closed."""
    return sorted(
        (policy.metadata.name or "?") if policy.metadata else "?"
        for policy in policies
        if policy.spec is not None and (policy.spec.ingress or policy.spec.egress)
    )


def network_policy_check(context: Context) -> CheckResult:
    """A deny-all policy must select every pod, and no policy may allow anything (allow rules add up)."""
    name = "network policy"
    policies = NetworkingV1Api(context.operator).list_namespaced_network_policy(context.namespace).items
    allowing = allowing_policies(policies)
    fix = f"{APPLY_OVERLAY}: k8s/base/networkpolicy.yaml denies all traffic of every runner pod"
    if not any(denies_all_traffic(policy) for policy in policies):
        return failed(
            name, f"no NetworkPolicy in {context.namespace} denies all ingress and egress of every pod", fix
        )
    if allowing:
        return failed(
            name,
            f"NetworkPolicy {', '.join(allowing)} in {context.namespace} allows traffic to or from runner pods",
            f"delete it: runner pods need no network at all ({fix})",
        )
    return passed(name, "deny-all present (whether it is enforced is the egress canary's check)")


def _quantity(value: Any) -> float:
    return float(parse_quantity(value))  # type: ignore[no-untyped-call]


def quota_check(context: Context) -> CheckResult:
    name = "resource quota"
    quotas = CoreV1Api(context.operator).list_namespaced_resource_quota(context.namespace).items
    limits = [
        int(_quantity(hard[JOB_COUNT_QUOTA]))
        for quota in quotas
        if quota.spec and (hard := quota.spec.hard or {}) and JOB_COUNT_QUOTA in hard
    ]
    fix = f"{APPLY_OVERLAY}: k8s/base/resourcequota.yaml"
    if not limits:
        return failed(name, f"no ResourceQuota in {context.namespace} bounds {JOB_COUNT_QUOTA}", fix)
    admitted, wanted = min(limits), context.settings.k8s_job_quota
    if admitted < wanted:
        return failed(
            name,
            f"{context.namespace} admits {admitted} Jobs at once but the service may start {wanted} "
            f"(EXEC_K8S_JOB_QUOTA): the rest would be answered 503",
            f"raise {JOB_COUNT_QUOTA} in k8s/base/resourcequota.yaml to {wanted}, or deploy with "
            f"-c jobQuota={admitted}",
        )
    return passed(name, f"{JOB_COUNT_QUOTA} = {admitted} (the service starts at most {wanted})")


def _largest_sandbox_mb(context: Context) -> int:
    """The largest container the service may ask for: a compile step's, or a run at the memory ceiling."""
    settings = context.settings
    template = JobTemplate.from_settings(settings)
    largest = 0
    for language in load_registry(settings.runners_dir).all():
        file_name = language.file_name
        steps = [
            run_step(
                language,
                file_name=file_name,
                memory_limit_mb=settings.max_memory_limit_mb,
                timeout_s=1,
                args=(),
            ),
            compile_step(
                language, file_name=file_name, memory_limit_mb=settings.max_memory_limit_mb, timeout_s=1
            ),
        ]
        largest = max(largest, *(container_memory_mb(step, template) for step in steps if step is not None))
    return largest


def limit_range_check(context: Context) -> CheckResult:
    name = "limit range"
    ranges = CoreV1Api(context.operator).list_namespaced_limit_range(context.namespace).items
    maxima = [
        _quantity(item.max["memory"]) / MEBIBYTE
        for limit_range in ranges
        if limit_range.spec
        for item in limit_range.spec.limits
        if item.type == "Container" and item.max and "memory" in item.max
    ]
    needed_mb = _largest_sandbox_mb(context)
    if not maxima:
        return failed(
            name,
            f"no LimitRange in {context.namespace} caps container memory",
            f"{APPLY_OVERLAY}: k8s/base/limitrange.yaml",
        )
    if min(maxima) < needed_mb:
        return failed(
            name,
            f"containers may use at most {min(maxima):g} Mi but the largest run needs {needed_mb} Mi",
            f"raise max.memory in k8s/base/limitrange.yaml to at least {needed_mb}Mi",
        )
    return passed(name, f"container memory capped at {min(maxima):g} Mi (largest run: {needed_mb} Mi)")


def runtime_class_check(context: Context) -> CheckResult:
    name = "runtime class"
    wanted = context.settings.k8s_runtime_class_name
    if not wanted:
        return CheckResult(
            name,
            Status.WARN,
            "none configured: runner pods share the node's kernel through the default runtime (runc)",
            "for production, install gVisor on the runner nodes and deploy with -c runtimeClassName=gvisor",
        )
    try:
        runtime_class = NodeV1Api(context.operator).read_runtime_class(wanted)
    except ApiException as exc:
        if exc.status != HTTP_NOT_FOUND:
            raise
        return failed(
            name,
            f"RuntimeClass {wanted} does not exist: no runner pod can start",
            "install gVisor on the runner nodes and create the RuntimeClass (docs/deploy.md)",
        )
    return passed(name, f"{wanted} (handler {runtime_class.handler})")
