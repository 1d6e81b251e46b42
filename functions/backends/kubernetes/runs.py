"""The asynchronous port of the Kubernetes backend: a thin layer over `JobOperations`.

The Job's name derives from the run id (`job_name`), so submit is idempotent and anyone who knows the run
id can delete its Job. A finished run's Job is deleted as soon as its report has been read.
"""

from __future__ import annotations

from functions.backends.kubernetes.backend import KubernetesBackend
from functions.backends.kubernetes.job_builder import job_name
from functions.backends.kubernetes.jobs import JobOperations, RunState
from functions.core.protocol import RunnerReport, RunnerTask
from functions.settings import Settings


class KubernetesRuns:
    name = "kubernetes"

    def __init__(self, jobs: JobOperations) -> None:
        self.jobs = jobs

    def submit(self, task: RunnerTask) -> str:
        self.jobs.submit(task)
        return task.execution_id

    def poll(self, run_id: str) -> RunnerReport | None:
        name = job_name(run_id)
        if self.jobs.status(name).state is not RunState.FINISHED:
            return None
        report = self.jobs.result(name)
        if report is not None:
            self.jobs.cancel(name)
        return report

    def cancel(self, run_id: str) -> None:
        self.jobs.cancel(job_name(run_id))


def create_runs(backend: KubernetesBackend, settings: Settings) -> KubernetesRuns:  # noqa: ARG001 - the factory signature
    return KubernetesRuns(backend.jobs)
