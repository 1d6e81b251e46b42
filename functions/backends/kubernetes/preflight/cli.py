"""`python -m functions preflight`: every check in order, one line each, exit code 1 if any failed."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client import ApiClient, ApiException, VersionApi

from functions.backends.kubernetes.client import create_api_client
from functions.backends.kubernetes.preflight import access, canary, cluster
from functions.backends.kubernetes.preflight.model import (
    CheckResult,
    Context,
    PreflightReport,
    Status,
    failed,
    passed,
)
from functions.backends.kubernetes.retry import NETWORK_ERRORS, describe
from functions.core.errors import ExecutionError
from functions.settings import Settings

FAILED_EXIT = 1
CANNOT_START_EXIT = 2
ADMIN_FIX = (
    "run the preflight as a cluster admin: it reads the namespace's objects and impersonates the service"
)

# A network error, or one the backend already turned into ours: the cluster did not answer.
UNREACHABLE: tuple[type[Exception], ...] = (*NETWORK_ERRORS, ExecutionError)

# What may stop the canary Jobs as a whole (a target that does not resolve, the API server gone).
CANARY_ERRORS: tuple[type[Exception], ...] = (ApiException, OSError, ValueError, *UNREACHABLE)

Check = Callable[[Context], CheckResult]
# The configuration, read as the operator and as the service, in the order a person fixes things.
CONFIGURATION_CHECKS: tuple[tuple[str, Check], ...] = (
    ("namespace", cluster.namespace_check),
    ("network policy", cluster.network_policy_check),
    ("resource quota", cluster.quota_check),
    ("limit range", cluster.limit_range_check),
    ("runtime class", cluster.runtime_class_check),
    ("service RBAC", access.rbac_check),
    ("admission guardrails", access.admission_check),
)


@dataclass(frozen=True, slots=True)
class Options:
    extra_egress_targets: tuple[str, ...] = ()
    runs: bool = True  # False: configuration only, no Job is created
    run_timeout_s: float = 90.0
    as_user: str = "code-exec-preflight"
    as_group: str = ""

    @classmethod
    def from_arguments(cls, arguments: argparse.Namespace) -> Options:
        return cls(
            extra_egress_targets=tuple(arguments.egress_target),
            runs=not arguments.no_runs,
            run_timeout_s=arguments.run_timeout,
            as_user=arguments.as_user,
            as_group=arguments.as_group,
        )


def impersonating(operator: ApiClient, user: str, group: str) -> ApiClient:
    """A client on the operator's connection whose requests the apiserver treats as `user` in `group`."""
    service = ApiClient(operator.configuration)
    service.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
    service.set_default_header("Impersonate-Group", group)  # type: ignore[no-untyped-call]
    return service


def _guarded(name: str, check: Check, context: Context) -> CheckResult:
    try:
        return check(context)
    except ApiException as exc:
        return failed(name, f"could not check: {describe(exc)}: {str(exc.body or '')[:300]}", ADMIN_FIX)
    except UNREACHABLE as exc:
        return failed(name, f"could not check: {exc}", "check the cluster is reachable from here")


def _reachable(context: Context) -> CheckResult:
    version = VersionApi(context.operator).get_code()
    return passed("cluster", f"{context.operator.configuration.host}, Kubernetes {version.git_version}")


def run_preflight(context: Context, options: Options) -> PreflightReport:
    reachable = _guarded("cluster", _reachable, context)
    if reachable.status is Status.FAIL:
        return PreflightReport((reachable,))
    results = [reachable, *(_guarded(name, check, context) for name, check in CONFIGURATION_CHECKS)]
    if options.runs:
        try:
            results += canary.run_checks(context, options.extra_egress_targets, options.run_timeout_s)
        except CANARY_ERRORS as exc:
            results.append(failed("canary Jobs", f"could not run: {exc}", ADMIN_FIX))
    else:
        skipped = "not run (--no-runs): no Job was created"
        results += [
            CheckResult("egress blocked", Status.SKIP, skipped),
            CheckResult("runner images", Status.SKIP, skipped),
        ]
    return PreflightReport(tuple(results))


def main(options: Options, settings: Settings, write: Callable[[str], None] = print) -> int:
    try:
        operator = create_api_client(settings)
    except ExecutionError as exc:
        write(f"error: {exc.message} ({exc.__cause__})")
        return CANNOT_START_EXIT
    service = impersonating(operator, options.as_user, options.as_group)
    context = Context(settings=settings, operator=operator, service=service)
    write(
        f"code-exec preflight: namespace {settings.k8s_namespace} on {operator.configuration.host}, "
        f"acting as the service (group {options.as_group})"
    )
    try:
        report = run_preflight(context, options)
    finally:
        operator.close()  # type: ignore[no-untyped-call]  # untyped in the client
    for line in report.lines():
        write(line)
    return 0 if report.ok else FAILED_EXIT
