"""The Kubernetes ExecutionBackend: create the Job, watch its pod, read the reports, always delete.

The wait has two bounds. The caller's budget: a run cut by it is a 504 (`DeadlineExceededError`). The run's
own time plus a small grace, per container from when it is seen running (the compile step's timeout; every
case's): past it the Job is deleted and the run is answered from what is known — a runner that is frozen,
killed or gone gives `time_limit_exceeded`, never a wait for the whole budget.
"""

from __future__ import annotations

import logging
from functools import partial

from functions.backends.kubernetes.client import create_api_client
from functions.backends.kubernetes.deadlines import container_times_s
from functions.backends.kubernetes.job_builder import JobTemplate
from functions.backends.kubernetes.jobs import JobOperations
from functions.backends.kubernetes.pod_watch import BudgetExhaustedError
from functions.backends.kubernetes.retry import RetryPolicy
from functions.core.backend import Toolchain
from functions.core.errors import DeadlineExceededError, ExecutionError
from functions.core.languages import LanguageSpec
from functions.core.protocol import RunnerReport, RunnerTask
from functions.settings import Settings

logger = logging.getLogger(__name__)

# The delete after a run may not hold the caller's response for long; the sweeper and the TTL back it up.
CLEANUP_BUDGET_S = 3.0


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self, jobs: JobOperations, *, wait_grace_s: float = 1.5) -> None:
        self.jobs = jobs
        self.wait_grace_s = wait_grace_s

    def close(self) -> None:
        """Nothing to release: every Job is deleted after its run (and swept if a caller died)."""

    def toolchain(self, language: LanguageSpec) -> Toolchain:
        """Every language has its image; the version is the one its image pins (its folder's)."""
        return Toolchain(available=True, version=language.version)

    def run(self, task: RunnerTask, *, budget_s: float) -> RunnerReport:
        deadline = self.jobs.clock() + budget_s
        name = self.jobs.submit(task, deadline=deadline)
        try:
            times_s = {
                container: time_s + self.wait_grace_s for container, time_s in container_times_s(task).items()
            }
            waited = self.jobs.wait(name, deadline=deadline, container_times_s=times_s)
            return self.jobs.report(name, waited, task)
        except BudgetExhaustedError as exc:
            raise DeadlineExceededError(
                f"the run did not finish within {budget_s:g} s", execution_id=task.execution_id
            ) from exc
        finally:
            self._delete(name)

    def _delete(self, name: str) -> None:
        # Never mask the run's own outcome: a Job we fail to delete is the sweeper's (and the TTL's) job.
        try:
            self.jobs.cancel(name, deadline=self.jobs.clock() + CLEANUP_BUDGET_S)
        except ExecutionError as exc:
            logger.warning("could not delete job", extra={"job": name, "error": exc.message})


def wait_times_s(task: RunnerTask, grace_s: float) -> dict[str, float]:
    """How long the service waits for each container of `task` once it runs: its own time and `grace_s`."""
    return {container: time_s + grace_s for container, time_s in container_times_s(task).items()}


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.k8s_api_max_attempts,
        base_backoff_s=settings.k8s_api_backoff_s,
        quota_retry_after_s=settings.k8s_quota_retry_after_s,
    )


def create_operations(settings: Settings) -> JobOperations:
    """The operations for the configured cluster; nothing talks to EKS or the cluster until the first call."""
    return JobOperations(
        partial(create_api_client, settings),
        JobTemplate.from_settings(settings),
        retry_policy(settings),
        request_timeout_s=settings.k8s_api_timeout_s,
    )


def create_backend(settings: Settings) -> KubernetesBackend:
    return KubernetesBackend(create_operations(settings), wait_grace_s=settings.k8s_wait_grace_s)
