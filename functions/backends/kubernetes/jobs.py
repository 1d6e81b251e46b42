"""The Job operations: submit / wait / status / result / cancel / sweep.

`KubernetesBackend.run` strings them together for a synchronous request; the Step Functions workflow
calls submit, then status and result from its poll task, and cancel from its cleanup.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import cast

import urllib3
from kubernetes.client import ApiClient, BatchV1Api, CoreV1Api, V1Job, V1Pod
from kubernetes.client.exceptions import ApiException

from functions.backends.kubernetes.constants import (
    DEADLINE_LABEL,
    JOB_NAME_LABEL,
    JUDGING_PLAN_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from functions.backends.kubernetes.job_builder import JobTemplate, build_job
from functions.backends.kubernetes.pod_results import run_report
from functions.backends.kubernetes.pod_state import (
    DEADLINE_EXCEEDED,
    PodObservation,
    PodPhase,
    job_failure_reason,
    observe_pod,
)
from functions.backends.kubernetes.pod_watch import MIN_REQUEST_TIMEOUT_S, PodWatcher, WaitResult
from functions.backends.kubernetes.retry import ApiErrorKind, RetryPolicy
from functions.backends.kubernetes.task_env import job_task
from functions.core.errors import BackendUnavailableError, NotFoundError
from functions.core.judging import JudgingPlan
from functions.core.protocol import RunnerReport, RunnerTask

logger = logging.getLogger(__name__)

_NOT_FOUND = frozenset({ApiErrorKind.NOT_FOUND})


class RunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"  # result() now returns the report


@dataclass(frozen=True, slots=True)
class JobStatus:
    name: str
    state: RunState


@dataclass(frozen=True, slots=True)
class _Apis:
    client: ApiClient
    batch: BatchV1Api
    core: CoreV1Api
    watcher: PodWatcher


class JobOperations:
    """`connect` makes the API client on first use, not here: for EKS that is a DescribeCluster call, and
    /health or /languages must answer without the cluster. A failed connect raises (BackendUnavailableError)
    and is tried again on the next call."""

    def __init__(
        self,
        connect: Callable[[], ApiClient],
        template: JobTemplate,
        retry: RetryPolicy,
        *,
        request_timeout_s: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._connect = connect
        self._apis: _Apis | None = None
        self._connect_lock = threading.Lock()
        self._template = template
        self._namespace = template.namespace
        self._retry = retry
        self._request_timeout_s = request_timeout_s
        self._wall_clock = wall_clock

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def api_client(self) -> ApiClient:
        return self._connected().client

    def close(self) -> None:
        """Release the client's connections, if it was ever made."""
        if self._apis is not None:
            self._apis.client.close()  # type: ignore[no-untyped-call]  # untyped in the client

    def _connected(self) -> _Apis:
        with self._connect_lock:  # the local server may run requests on several threads
            if self._apis is None:
                api_client = self._connect()
                core = CoreV1Api(api_client)
                watcher = PodWatcher(core, self._namespace, self._retry)
                self._apis = _Apis(api_client, BatchV1Api(api_client), core, watcher)
            return self._apis

    def clock(self) -> float:
        """Monotonic seconds: the clock every `deadline` here is measured on."""
        return self._retry.clock()

    def submit(
        self, task: RunnerTask, *, deadline: float | None = None, plan: JudgingPlan | None = None
    ) -> str:
        """Create the Job; idempotent, since the name derives from the execution id. With `plan`, the Job
        alone says how to judge the run (`judging_plan`), as an asynchronous caller needs."""
        job = build_job(task, self._template, now_s=self._wall_clock(), plan=plan)
        name = str(job.metadata.name)  # type: ignore[union-attr]  # build_job always sets metadata
        try:
            self._retry.call(
                "create job",
                lambda: self._connected().batch.create_namespaced_job(
                    self._namespace, job, _request_timeout=self._timeout(deadline)
                ),
                deadline=deadline,
                passthrough=frozenset({ApiErrorKind.CONFLICT}),
            )
        except ApiException:
            logger.info("job already exists (an earlier create went through)", extra={"job": name})
        return name

    def wait(
        self, name: str, *, deadline: float, container_times_s: Mapping[str, float] | None = None
    ) -> WaitResult:
        """Watch the Job's pod until it ends, can never start, or a container outlives its time
        (`PodWatcher`)."""
        return self._connected().watcher.wait(name, deadline=deadline, container_times_s=container_times_s)

    def status(self, name: str) -> JobStatus:
        job = self._read_job(name)
        pod = self._newest_pod(name)
        observation = observe_pod(pod) if pod is not None else PodObservation(PodPhase.PENDING)
        if observation.phase is PodPhase.UNSTARTABLE:
            raise _unstartable(observation)
        if observation.finished or job_failure_reason(job, now=self._now()) is not None:
            return JobStatus(name, RunState.FINISHED)
        return JobStatus(
            name, RunState.RUNNING if observation.phase is PodPhase.RUNNING else RunState.PENDING
        )

    def result(self, name: str) -> RunnerReport | None:
        """The run's report from the Job alone once it has finished, else None."""
        job = self._read_job(name)
        pod = self._newest_pod(name)
        observation = observe_pod(pod) if pod is not None else PodObservation(PodPhase.GONE)
        if not observation.finished or (pod is None and job_failure_reason(job, now=self._now()) is None):
            return None
        return self.report(name, WaitResult(pod, observation), job_task(job), job=job)

    def judging_plan(self, name: str) -> JudgingPlan | None:
        """The plan `submit` stored on the Job, if any."""
        annotations = _annotations(self._read_job(name))
        plan = annotations.get(JUDGING_PLAN_ANNOTATION)
        return JudgingPlan.model_validate_json(plan) if plan else None

    def report(
        self, name: str, waited: WaitResult, task: RunnerTask, *, job: V1Job | None = None
    ) -> RunnerReport:
        """What the runners wrote, completed from the pod's and the Job's status; raises for a pod that
        never started or was deleted by someone else."""
        if waited.observation.phase is PodPhase.UNSTARTABLE:
            raise _unstartable(waited.observation)
        return run_report(
            waited,
            task,
            read_log=self._read_log,
            deadline_exceeded=lambda: self._deadline_exceeded(name, waited.observation, job),
        )

    def _deadline_exceeded(self, name: str, observation: PodObservation, job: V1Job | None) -> bool:
        if observation.reason == DEADLINE_EXCEEDED:
            return True
        if job is None:
            with contextlib.suppress(NotFoundError):  # deleted under us: explained as a lost pod
                job = self._read_job(name)
        return job is not None and job_failure_reason(job, now=self._now()) == DEADLINE_EXCEEDED

    def cancel(self, name: str, *, deadline: float | None = None) -> None:
        """Delete the Job and, in the background, its pods; a Job already gone is fine."""
        with contextlib.suppress(ApiException):  # only 404 passes through the retry
            self._retry.call(
                "delete job",
                lambda: self._connected().batch.delete_namespaced_job(
                    name,
                    self._namespace,
                    propagation_policy="Background",
                    _request_timeout=self._timeout(deadline),
                ),
                deadline=deadline,
                passthrough=_NOT_FOUND,
            )

    def sweep_orphans(self, now_s: float) -> list[str]:
        """Delete this service's Jobs whose deadline label is in the past; returns their names."""
        jobs = self._retry.call(
            "list jobs",
            lambda: self._connected().batch.list_namespaced_job(
                self._namespace,
                label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{DEADLINE_LABEL}",
                _request_timeout=self._request_timeout_s,
            ),
        )
        swept: list[str] = []
        for job in jobs.items:
            labels = (job.metadata.labels if job.metadata else None) or {}
            name = job.metadata.name if job.metadata else None
            deadline = labels.get(DEADLINE_LABEL, "")
            if name and deadline.isdigit() and int(deadline) < now_s:
                self.cancel(name)
                swept.append(name)
        return swept

    def _read_job(self, name: str) -> V1Job:
        try:
            return self._retry.call(
                "read job",
                lambda: self._connected().batch.read_namespaced_job(
                    name, self._namespace, _request_timeout=self._request_timeout_s
                ),
                passthrough=_NOT_FOUND,
            )
        except ApiException as exc:
            raise NotFoundError(f"no execution Job {name!r} in namespace {self._namespace}") from exc

    def _newest_pod(self, name: str) -> V1Pod | None:
        pods = self._retry.call(
            "list pods",
            lambda: self._connected().core.list_namespaced_pod(
                self._namespace,
                label_selector=f"{JOB_NAME_LABEL}={name}",
                _request_timeout=self._request_timeout_s,
            ),
        )
        # backoffLimit 0 means one pod; should a controller ever make two, the newest speaks.
        return max(
            pods.items,
            key=lambda pod: (
                (pod.metadata.creation_timestamp if pod.metadata else None)
                or datetime.min.replace(tzinfo=UTC)
            ),
            default=None,
        )

    def _read_log(self, pod_name: str, container: str, limit_bytes: int) -> bytes | None:
        """At most `limit_bytes` of one container's log: a report longer than any honest one is refused
        unread (its first bytes are enough to tell)."""
        try:
            # With _preload_content=False the client returns the raw urllib3 response (its annotation says
            # str): the bytes are read as they are, never through the client's deserializer.
            response = cast(
                "urllib3.BaseHTTPResponse",
                self._retry.call(
                    "read pod log",
                    lambda: self._connected().core.read_namespaced_pod_log(
                        pod_name,
                        self._namespace,
                        container=container,
                        limit_bytes=limit_bytes,
                        _preload_content=False,
                        _request_timeout=self._request_timeout_s,
                    ),
                    passthrough=_NOT_FOUND,
                ),
            )
        except ApiException:
            return None  # the pod is gone, and its log with it
        try:
            return response.read(limit_bytes)
        finally:
            response.release_conn()

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self._request_timeout_s
        return max(MIN_REQUEST_TIMEOUT_S, min(self._request_timeout_s, deadline - self._retry.clock()))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), tz=UTC)


def _annotations(job: V1Job) -> dict[str, str]:
    return (job.metadata.annotations if job.metadata else None) or {}


def _unstartable(observation: PodObservation) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"the runner container could not start: {observation.reason}"
        + (f" ({observation.message.strip()[:200]})" if observation.message.strip() else "")
    )
