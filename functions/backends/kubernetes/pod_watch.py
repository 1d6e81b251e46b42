"""Wait for a Job's pod to end on a watch: list once, then watch from that resourceVersion; never sleep-poll.

A dropped watch resumes from the last resourceVersion it delivered; an expired one (410 Gone) lists again.
Every request is bounded by the caller's remaining budget.
"""

from __future__ import annotations

import contextlib
import logging
import math

from kubernetes.client import CoreV1Api, V1Pod
from kubernetes.watch import Watch

from functions.backends.kubernetes.constants import JOB_NAME_LABEL
from functions.backends.kubernetes.pod_state import PodObservation, observe_pod
from functions.backends.kubernetes.retry import API_ERRORS, ApiErrorKind, RetryPolicy, classify

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
MIN_REQUEST_TIMEOUT_S = 0.1


class BudgetExhaustedError(Exception):
    """The caller's time ran out while the run was still going."""


class PodWatcher:
    def __init__(self, core: CoreV1Api, namespace: str, retry: RetryPolicy) -> None:
        self._core = core
        self._namespace = namespace
        self._retry = retry

    def wait(self, job_name: str, *, deadline: float) -> tuple[V1Pod, PodObservation]:
        """The pod once it has ended or can never start; `BudgetExhaustedError` at the (monotonic) deadline."""
        selector = f"{JOB_NAME_LABEL}={job_name}"
        resource_version: str | None = None
        failures = 0
        while True:
            if self._retry.clock() >= deadline:
                raise BudgetExhaustedError(job_name)
            watch = Watch()  # type: ignore[no-untyped-call]  # kubernetes.watch has no annotations
            try:
                if resource_version is None:
                    pods = self._core.list_namespaced_pod(
                        self._namespace, label_selector=selector, _request_timeout=self._remaining_s(deadline)
                    )
                    resource_version = pods.metadata.resource_version if pods.metadata else None
                    for pod in pods.items:
                        observation = observe_pod(pod)
                        if observation.finished:
                            return pod, observation
                found = self._watch_once(watch, selector, resource_version, deadline)
                if found is not None:
                    return found
                # The server closed the watch (its timeout): go on from where it stopped.
                resource_version = watch.resource_version or resource_version
                failures = 0
            except API_ERRORS as exc:
                resource_version, failures = self._after_error(
                    exc, watch.resource_version or resource_version, failures, deadline
                )

    def _watch_once(
        self, watch: Watch, selector: str, resource_version: str | None, deadline: float
    ) -> tuple[V1Pod, PodObservation] | None:
        remaining_s = self._remaining_s(deadline)
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
                observation = observe_pod(pod, deleted=event["type"] == "DELETED")
                if observation.finished:
                    return pod, observation
        return None

    def _after_error(
        self, exc: Exception, resource_version: str | None, failures: int, deadline: float
    ) -> tuple[str | None, int]:
        """How the loop goes on: list again (410), resume after a backoff, or give up."""
        if self._retry.clock() >= deadline:
            raise BudgetExhaustedError(str(exc)) from exc
        kind = classify(exc)
        if kind is ApiErrorKind.GONE:
            return None, failures
        failures += 1
        if kind is not ApiErrorKind.TRANSIENT or failures >= self._retry.max_attempts:
            raise self._retry.error_for("watch pods", exc) from exc
        delay_s = self._retry.backoff_s(failures, exc)
        logger.warning("pod watch interrupted; resuming", extra={"error": str(exc), "attempt": failures})
        if self._retry.clock() + delay_s >= deadline:
            raise BudgetExhaustedError(str(exc)) from exc
        self._retry.sleep(delay_s)
        return resource_version, failures

    def _remaining_s(self, deadline: float) -> float:
        return max(MIN_REQUEST_TIMEOUT_S, deadline - self._retry.clock())
