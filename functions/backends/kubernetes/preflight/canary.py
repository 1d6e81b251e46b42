"""Jobs run as the service, the way it runs a request: an egress probe that must reach nothing, and each
language's test program (its image is pulled, scheduled where the service's pods go, and runs)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubernetes.client import ApiException, CoreV1Api, V1Pod

from functions.backends.kubernetes.backend import CLEANUP_BUDGET_S, retry_policy, wait_times_s
from functions.backends.kubernetes.constants import JOB_NAME_LABEL
from functions.backends.kubernetes.job_builder import JobTemplate
from functions.backends.kubernetes.jobs import JobOperations
from functions.backends.kubernetes.pod_watch import BudgetExhaustedError
from functions.backends.kubernetes.preflight.model import CheckResult, Context, Status, failed, passed
from functions.backends.kubernetes.preflight.programs import (
    languages,
    prepared_for,
    probe_request,
    test_program_request,
)
from functions.core.errors import ExecutionError
from functions.core.languages import TEST_PROGRAM_OUTPUT
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.results import build_response
from functions.core.verdicts import Verdict

Target = tuple[str, str, int]  # (what it is, IP address, TCP port)
NETWORK_POLICY_ENGINE_FIX = (
    "the NetworkPolicy exists but nothing enforces it: enable network policy in the Amazon VPC CNI "
    "(enableNetworkPolicy: true; Auto Mode: its network policy setting) or install Calico or Cilium"
)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    response: ExecuteResponse | None
    problem: str | None  # why there is no response
    elapsed_s: float


def run_as_service(
    context: Context, jobs: JobOperations, request: ExecuteRequest, budget_s: float
) -> RunOutcome:
    """Submit, watch, read, always delete: the service's own sequence; on a timeout, say what held the pod."""
    prepared = prepared_for(context.settings, request)
    task = prepared.task
    started = jobs.clock()
    deadline = started + budget_s
    try:
        name = jobs.submit(task, deadline=deadline)
    except ExecutionError as exc:
        return RunOutcome(None, exc.message, jobs.clock() - started)
    try:
        times_s = wait_times_s(task, context.settings.k8s_wait_grace_s)
        waited = jobs.wait(name, deadline=deadline, container_times_s=times_s)
        response = build_response(prepared.plan, jobs.report(name, waited, task))
        return RunOutcome(response, None, jobs.clock() - started)
    except BudgetExhaustedError:
        problem = f"not finished after {budget_s:g} s: {_why_pending(context, name)}"
        return RunOutcome(None, problem, jobs.clock() - started)
    except ExecutionError as exc:
        return RunOutcome(None, exc.message, jobs.clock() - started)
    finally:
        with contextlib.suppress(ExecutionError):
            jobs.cancel(name, deadline=jobs.clock() + CLEANUP_BUDGET_S)


def _why_pending(context: Context, job_name: str) -> str:
    pods = CoreV1Api(context.service).list_namespaced_pod(
        context.namespace, label_selector=f"{JOB_NAME_LABEL}={job_name}"
    )
    if not pods.items:
        return "no pod was created (the Job controller could not create it: quota, admission or RuntimeClass)"
    return _pod_problem(pods.items[0])


def _pod_problem(pod: V1Pod) -> str:
    status = pod.status
    if status is None:
        return "pod Pending"
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status != "True":
            return f"not scheduled ({condition.reason}): {condition.message or ''}".strip()
    for container in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        waiting = container.state.waiting if container.state else None
        if waiting is not None:
            return f"container {container.name} waiting ({waiting.reason}): {waiting.message or ''}".strip()
    return f"pod {status.phase}"


def operations(context: Context) -> JobOperations:
    settings = context.settings
    return JobOperations(
        lambda: context.service,
        JobTemplate.from_settings(settings),
        retry_policy(settings),
        request_timeout_s=settings.k8s_api_timeout_s,
    )


def _resolved(name: str, host: str, port: int) -> Target:
    """Resolved here, outside the pod: the pod's own DNS is one of the things that must be blocked."""
    address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    return (name, str(address), port)


def egress_targets(context: Context, extra: Iterable[str]) -> tuple[list[Target], list[str]]:
    """The API server as this machine reaches it, the in-cluster API and DNS Services, the operator's."""
    server = urlsplit(context.operator.configuration.host)
    port = server.port or 443
    targets = [_resolved(f"API server {server.hostname}:{port}", server.hostname or "", port)]
    notes: list[str] = []
    core = CoreV1Api(context.operator)
    for namespace, service, what in (
        ("default", "kubernetes", "API Service"),
        ("kube-system", "kube-dns", "cluster DNS"),
    ):
        try:
            spec = core.read_namespaced_service(service, namespace).spec
        except ApiException as exc:
            notes.append(f"no {what} Service {namespace}/{service} (HTTP {exc.status})")
            continue
        if spec and spec.cluster_ip and spec.cluster_ip != "None" and spec.ports:
            targets.append(
                (f"{what} {spec.cluster_ip}:{spec.ports[0].port}", spec.cluster_ip, spec.ports[0].port)
            )
    for item in extra:
        host, _, port_text = item.rpartition(":")
        targets.append(_resolved(f"{item}", host.strip("[]"), int(port_text)))
    return targets, notes


def egress_check(outcome: RunOutcome, targets: list[Target], notes: list[str]) -> CheckResult:
    name = "egress blocked"
    if outcome.response is None or outcome.response.verdict is not Verdict.ACCEPTED:
        detail = outcome.problem or f"verdict {outcome.response.verdict.value if outcome.response else '?'}"
        return failed(name, f"the egress canary did not run: {detail}", "see the runner image checks below")
    try:
        results: dict[str, str] = json.loads(outcome.response.stdout)
    except ValueError:
        return failed(
            name, f"the egress canary printed {outcome.response.stdout[:200]!r}", "a bug: report it"
        )
    reached = sorted(target for target, result in results.items() if result == "open")
    if reached:
        return failed(name, f"a runner pod reached {', '.join(reached)}", NETWORK_POLICY_ENGINE_FIX)
    blocked = ", ".join(
        f"{target} ({result.removeprefix('blocked: ')})" for target, result in results.items()
    )
    suffix = f"; {'; '.join(notes)}" if notes else ""
    return passed(name, f"a runner pod reached none of {len(targets)} targets: {blocked}{suffix}")


def image_check(language: str, outcome: RunOutcome, budget_s: float) -> CheckResult:
    name = f"runner image {language}"
    response = outcome.response
    if response is None:
        return failed(
            name,
            outcome.problem or "no result",
            "check the image exists and the runner nodes may pull it (node role: "
            "AmazonEC2ContainerRegistryReadOnly; private subnets: ecr.api, ecr.dkr and s3 endpoints), and that "
            "a node matches the service's node selector, tolerations and RuntimeClass",
        )
    if response.verdict is not Verdict.ACCEPTED or response.stdout != TEST_PROGRAM_OUTPUT:
        return failed(
            name,
            f"the test program ended {response.verdict.value}: {(response.stderr or response.stdout)[:200]!r}",
            "rebuild and push the image (make deploy); its runner or toolchain is broken",
        )
    detail = f"pulled, scheduled and ran its test program in {outcome.elapsed_s:.1f} s"
    if outcome.elapsed_s > budget_s / 2:
        return CheckResult(
            name,
            Status.WARN,
            f"{detail}: a cold node's first pull eats into the {budget_s:g} s budget of a request",
            "keep runner nodes warm or pre-pull the images (docs/deploy.md, cold image pulls)",
        )
    return passed(name, detail)


def run_checks(context: Context, extra_targets: Iterable[str], budget_s: float) -> list[CheckResult]:
    """The egress canary and one test program per language, all at once."""
    jobs = operations(context)
    targets, notes = egress_targets(context, extra_targets)
    programs = {
        language.name: test_program_request(context.settings, language)
        for language in languages(context.settings)
    }
    with ThreadPoolExecutor(max_workers=len(programs) + 1, thread_name_prefix="preflight") as pool:
        probe = pool.submit(run_as_service, context, jobs, probe_request(targets), budget_s)
        runs = {
            name: pool.submit(run_as_service, context, jobs, request, budget_s)
            for name, request in programs.items()
        }
        results = [egress_check(probe.result(), targets, notes)]
        results += [
            image_check(name, run.result(), context.settings.sync_budget_s) for name, run in runs.items()
        ]
    return results
