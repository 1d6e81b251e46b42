"""As the service: its RBAC is exactly what it needs, and admission lets its Jobs in and nothing unlike them.

Every request here goes through the impersonating client, so the apiserver authorises and admits it as it
would the service's own. Admission is probed with server-side dry runs: the whole chain runs, nothing is made.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

from kubernetes.client import (
    ApiException,
    AuthorizationV1Api,
    BatchV1Api,
    V1Job,
    V1PodSpec,
    V1ResourceAttributes,
    V1SelfSubjectAccessReview,
    V1SelfSubjectAccessReviewSpec,
    V1SelfSubjectRulesReview,
    V1SelfSubjectRulesReviewSpec,
)

from functions.backends.kubernetes.constants import CONTROLLER_GROUP, CONTROLLER_PERMISSIONS
from functions.backends.kubernetes.preflight.model import APPLY_OVERLAY, CheckResult, Context, failed, passed
from functions.backends.kubernetes.preflight.programs import job_for, languages, test_program_request

Permission = tuple[str, str, str]  # (API group, resource, verb)

# What every authenticated identity may do (system:basic-user): ask the apiserver who it is and what it may.
SELF_REVIEWS: frozenset[Permission] = frozenset(
    {
        ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
        ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
        ("authentication.k8s.io", "selfsubjectreviews", "create"),
    }
)
# Beyond its namespace the service may do nothing; these are the rights an attacker would want most.
CLUSTER_WIDE_PROBES: tuple[Permission, ...] = (
    ("", "secrets", "list"),
    ("", "pods", "create"),
    ("", "pods/exec", "create"),
    ("", "serviceaccounts/token", "create"),
    ("", "nodes/proxy", "get"),
    ("", "users", "impersonate"),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
)
FOREIGN_IMAGE = "admission-probe.invalid/not-a-runner:0"


def _allowed(context: Context, permission: Permission, namespace: str) -> bool:
    group, resource, verb = permission
    resource, _, subresource = resource.partition("/")
    attributes = V1ResourceAttributes(
        namespace=namespace, group=group, resource=resource, subresource=subresource or None, verb=verb
    )
    review = V1SelfSubjectAccessReview(spec=V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    answer = AuthorizationV1Api(context.service).create_self_subject_access_review(review)
    return bool(answer.status and answer.status.allowed)


def _granted_in_namespace(context: Context) -> set[Permission]:
    review = V1SelfSubjectRulesReview(spec=V1SelfSubjectRulesReviewSpec(namespace=context.namespace))
    answer = AuthorizationV1Api(context.service).create_self_subject_rules_review(review)
    rules = answer.status.resource_rules if answer.status else []
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.api_groups or [""]
        for resource in rule.resources or []
        for verb in rule.verbs
    }


def rbac_check(context: Context) -> CheckResult:
    name = "service RBAC"
    required = set(CONTROLLER_PERMISSIONS)
    missing = sorted(p for p in required if not _allowed(context, p, context.namespace))
    extra = [_describe([p]) for p in sorted(_granted_in_namespace(context) - required - SELF_REVIEWS)]
    extra += [f"{_describe([p])} in every namespace" for p in CLUSTER_WIDE_PROBES if _allowed(context, p, "")]
    if missing:
        return failed(
            name,
            f"group {CONTROLLER_GROUP} may not {_describe(missing)} in {context.namespace}: the service "
            "cannot run, watch or clean up its Jobs",
            f"{APPLY_OVERLAY}: k8s/base/rbac.yaml binds the Role runner-controller to {CONTROLLER_GROUP}",
        )
    if extra:
        return failed(
            name,
            f"group {CONTROLLER_GROUP} may do more than it needs: {', '.join(extra)}",
            "remove the RoleBindings/ClusterRoleBindings that grant it (kubectl get rolebindings,"
            "clusterrolebindings -A -o wide) and any EKS access policy associated with the service's role",
        )
    return passed(
        name, f"exactly the {len(required)} permissions the service uses, in {context.namespace} only"
    )


def _describe(permissions: list[Permission]) -> str:
    return ", ".join(
        f"{verb} {resource}{'.' + group if group else ''}" for group, resource, verb in permissions
    )


def _dry_run(context: Context, job: V1Job) -> str | None:
    """None when admitted, else the apiserver's reason."""
    try:
        BatchV1Api(context.service).create_namespaced_job(context.namespace, job, dry_run="All")
    except ApiException as exc:
        return f"HTTP {exc.status}: {_message(exc)}"
    return None


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.reason))
    except ValueError:
        return str(exc.reason)


def _changed(job: V1Job, change: Callable[[V1PodSpec], None]) -> V1Job:
    altered = copy.deepcopy(job)
    assert altered.spec is not None  # noqa: S101 - build_job always sets the pod spec
    assert altered.spec.template.spec is not None  # noqa: S101
    change(altered.spec.template.spec)
    return altered


def _foreign_image(spec: V1PodSpec) -> None:
    spec.containers[0].image = FOREIGN_IMAGE


def _privileged(spec: V1PodSpec) -> None:
    context = spec.containers[0].security_context
    assert context is not None  # noqa: S101 - build_job always sets it
    context.privileged, context.allow_privilege_escalation = True, True


def _mounted_token(spec: V1PodSpec) -> None:
    spec.automount_service_account_token = True


UNLIKE_OURS: tuple[tuple[str, Callable[[V1PodSpec], None]], ...] = (
    ("a foreign image", _foreign_image),
    ("a privileged container", _privileged),
    ("a mounted API token", _mounted_token),
)


def admission_check(context: Context) -> CheckResult:
    """Our Job for every language is admitted; a Job like it but unsafe in one way is refused by policy."""
    name = "admission guardrails"
    ours = {
        language.name: job_for(context.settings, test_program_request(context.settings, language))
        for language in languages(context.settings)
    }
    for language, job in ours.items():
        refusal = _dry_run(context, job)
        if refusal is not None:
            fix = (
                "set imagePrefix (and runtimeClassName) of the ConfigMap runner-admission in "
                "k8s/overlays/<environment> to the stack's RunnerImagePrefix (and runtimeClassName), then "
                f"{APPLY_OVERLAY}"
                if _refused_by_policy(refusal)
                else "the service may not create Jobs here: see the service RBAC and resource quota checks"
            )
            return failed(name, f"the service's own {language} Job is refused: {refusal}", fix)
    admitted = [
        what
        for what, change in UNLIKE_OURS
        if not _refused_by_policy(_dry_run(context, _changed(next(iter(ours.values())), change)))
    ]
    if admitted:
        return failed(
            name,
            f"a Job with {' / '.join(admitted)} is admitted into {context.namespace}: only Pod Security, on its "
            "pods, stands between a stolen service identity and the node",
            f"{APPLY_OVERLAY}: k8s/base/admission-policy.yaml (needs Kubernetes >= 1.30)",
        )
    return passed(
        name,
        f"the service's Jobs ({', '.join(ours)}) are admitted; "
        f"{', '.join(what for what, _ in UNLIKE_OURS)} refused by policy",
    )


def _refused_by_policy(refusal: str | None) -> bool:
    return refusal is not None and "ValidatingAdmissionPolicy" in refusal
