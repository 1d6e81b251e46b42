"""What a check finds, and the report of all of them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kubernetes.client import ApiClient

from functions.settings import Settings

# How an operator re-creates everything k8s/ defines for the runner namespace.
APPLY_OVERLAY = "kubectl apply -k k8s/overlays/<environment> (as a cluster admin)"


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"  # works, but weaker or slower than it should be
    SKIP = "SKIP"  # not checked (not configured, or asked not to)
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """The service's settings, and two views of its cluster: the operator's and the service's own."""

    settings: Settings
    operator: ApiClient  # reads the cluster's objects
    service: ApiClient  # acts as the service: its RBAC, its admission, its Jobs

    @property
    def namespace(self) -> str:
        return self.settings.k8s_namespace


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.PASS, detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, detail, fix)


@dataclass(frozen=True, slots=True)
class PreflightReport:
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.status is not Status.FAIL for result in self.results)

    def lines(self) -> list[str]:
        width = max((len(result.name) for result in self.results), default=0)
        out: list[str] = []
        for result in self.results:
            out.append(f"  {result.status.value:<4}  {result.name:<{width}}  {result.detail}")
            if result.fix:
                out.append(f"        {'':<{width}}  fix: {result.fix}")
        counts = {status: sum(r.status is status for r in self.results) for status in Status}
        summary = ", ".join(f"{count} {status.value.lower()}" for status, count in counts.items() if count)
        out.append(f"{'preflight passed' if self.ok else 'preflight FAILED'}: {summary}")
        return out
