"""Wait for a Job's pod to end on a watch: list once, then watch from that resourceVersion; never sleep-poll.

A dropped watch resumes from the last resourceVersion it delivered; an expired one (410 Gone) lists again.
Two clocks bound the wait: the caller's budget (`deadline`: past it, `BudgetExhaustedError`) and the run's
own time: each container has its time (`container_times_s`: the compile step's, or every case's), counted
from when it is first seen running; past it the run is `out_of_time`, whatever its runner is doing. Between
two containers (the cluster starting the next one) only the caller's budget runs. Every request is bounded
by the nearer of the two.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubernetes.client import CoreV1Api, V1Pod
from kubernetes.watch import Watch

from functions.backends.kubernetes.constants import JOB_NAME_LABEL
from functions.backends.kubernetes.pod_state import PodObservation, PodPhase, observe_pod
from functions.backends.kubernetes.retry import API_ERRORS, ApiErrorKind, RetryPolicy, classify

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
MIN_REQUEST_TIMEOUT_S = 0.1


class BudgetExhaustedError(Exception):
    """The caller's time ran out while the run was still going."""


@dataclass(frozen=True, slots=True)
class WaitResult:
    pod: V1Pod | None
    observation: PodObservation
    out_of_time: bool = False  # still running past the run's own time: kill it, answer a timeout


@dataclass(slots=True)
class _Progress:
    """What the wait has seen so far; the run's own deadline is the running container's."""

    container_times_s: Mapping[str, float]
    deadlines: dict[str, float] = field(default_factory=dict)  # per container, from when it was seen running
    run_deadline: float | None = None
    last: WaitResult = field(default_factory=lambda: WaitResult(None, PodObservation(PodPhase.PENDING)))

    def bound(self, deadline: float) -> float:
        return deadline if self.run_deadline is None else min(deadline, self.run_deadline)


class _Started(Exception):  # noqa: N818 - control flow: restart the watch with the run's own deadline
    """A container started: the watch goes on bounded by its deadline."""


class PodWatcher:
    def __init__(self, core: CoreV1Api, namespace: str, retry: RetryPolicy) -> None:
        self._core = core
        self._namespace = namespace
        self._retry = retry

    def wait(
        self, job_name: str, *, deadline: float, container_times_s: Mapping[str, float] | None = None
    ) -> WaitResult:
        """The pod once it has ended or can never start, or `out_of_time` once a container ran longer than
        its time; `BudgetExhaustedError` at the (monotonic) `deadline`."""
        selector = f"{JOB_NAME_LABEL}={job_name}"
        progress = _Progress(container_times_s or {})
        resource_version: str | None = None
        failures = 0
        while True:
            out_of_time = self._out_of_time(progress, deadline)
            if out_of_time is not None:
                return out_of_time
            watch = Watch()  # type: ignore[no-untyped-call]  # kubernetes.watch has no annotations
            try:
                if resource_version is None:
                    pods = self._core.list_namespaced_pod(
                        self._namespace,
                        label_selector=selector,
                        _request_timeout=self._remaining_s(progress.bound(deadline)),
                    )
                    resource_version = pods.metadata.resource_version if pods.metadata else None
                    for pod in pods.items:
                        found = self._seen(progress, pod, deleted=False)
                        if found is not None:
                            return found
                found = self._watch_once(watch, selector, resource_version, progress, deadline)
                if found is not None:
                    return found
                # The server closed the watch (its timeout): go on from where it stopped.
                resource_version = watch.resource_version or resource_version
                failures = 0
            except _Started:
                resource_version = watch.resource_version or resource_version
            except API_ERRORS as exc:
                if self._out_of_time(progress, deadline) is None:
                    resource_version, failures = self._after_error(
                        exc, watch.resource_version or resource_version, failures, progress.bound(deadline)
                    )

    def _out_of_time(self, progress: _Progress, deadline: float) -> WaitResult | None:
        now = self._retry.clock()
        if progress.run_deadline is not None and now >= progress.run_deadline:
            return WaitResult(progress.last.pod, progress.last.observation, out_of_time=True)
        if now >= deadline:
            raise BudgetExhaustedError("the caller's time budget ran out")
        return None

    def _seen(self, progress: _Progress, pod: V1Pod, *, deleted: bool) -> WaitResult | None:
        """The result once `pod` has ended; raises _Started when the run's own deadline changes (a container
        started, or ended and the next has not started yet)."""
        observation = observe_pod(pod, deleted=deleted)
        progress.last = WaitResult(pod, observation)
        if observation.finished:
            return progress.last
        running = observation.running
        run_deadline = progress.deadlines.get(running) if running else None
        if running is not None and running in progress.container_times_s and run_deadline is None:
            run_deadline = progress.deadlines[running] = (
                self._retry.clock() + progress.container_times_s[running]
            )
        if run_deadline != progress.run_deadline:
            progress.run_deadline = run_deadline
            raise _Started
        return None

    def _watch_once(
        self, watch: Watch, selector: str, resource_version: str | None, progress: _Progress, deadline: float
    ) -> WaitResult | None:
        remaining_s = self._remaining_s(progress.bound(deadline))
        events = watch.stream(  # type: ignore[no-untyped-call]
            self._core.list_namespaced_pod,
            self._namespace,
            label_selector=selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            # The server closes the watch at the budget; the read timeout catches a silent connection.
            timeout_seconds=max(1, math.ceil(remaining_s)),
            _request_timeout=(CONNECT_TIMEOUT_S, remaining_s),
        )
        with contextlib.closing(events):
            for event in events:
                pod = event["object"]
                if event["type"] == "BOOKMARK" or not isinstance(pod, V1Pod):
                    continue
                found = self._seen(progress, pod, deleted=event["type"] == "DELETED")
                if found is not None:
                    return found
                if self._retry.clock() >= progress.bound(deadline):
                    return None
        return None

    def _after_error(
        self, exc: Exception, resource_version: str | None, failures: int, bound: float
    ) -> tuple[str | None, int]:
        """How the loop goes on: list again (410), resume after a backoff, or give up. A backoff never
        sleeps past `bound`: the loop's own checks then decide (budget exhausted, or out of time)."""
        kind = classify(exc)
        if kind is ApiErrorKind.GONE:
            return None, failures
        failures += 1
        if kind is not ApiErrorKind.TRANSIENT or failures >= self._retry.max_attempts:
            raise self._retry.error_for("watch pods", exc) from exc
        delay_s = self._retry.backoff_s(failures, exc)
        logger.warning("pod watch interrupted; resuming", extra={"error": str(exc), "attempt": failures})
        self._retry.sleep(max(0.0, min(delay_s, bound - self._retry.clock())))
        return resource_version, failures

    def _remaining_s(self, deadline: float) -> float:
        return max(MIN_REQUEST_TIMEOUT_S, deadline - self._retry.clock())
