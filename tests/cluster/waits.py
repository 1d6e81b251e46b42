"""Wait for cluster state on a watch (list, then watch from that resourceVersion) — never sleep-poll."""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Any

from kubernetes import client, watch

Predicate = Callable[[list[Any]], bool]


def wait_for(
    list_fn: Callable[..., Any], predicate: Predicate, *, timeout_s: float, **kwargs: Any
) -> list[Any]:
    """Until `predicate(objects)` holds for the objects `list_fn(**kwargs)` returns; the objects then.

    Raises TimeoutError with what it last saw.
    """
    deadline_s = monotonic() + timeout_s
    listing = list_fn(**kwargs)
    objects = {item.metadata.uid: item for item in listing.items}
    resource_version = listing.metadata.resource_version
    while not predicate(list(objects.values())):
        remaining_s = deadline_s - monotonic()
        if remaining_s <= 0:
            names = [f"{o.metadata.name}:{_summary(o)}" for o in objects.values()]
            raise TimeoutError(f"not reached within {timeout_s} s; last seen: {names}")
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]  # untyped module
            list_fn, resource_version=resource_version, timeout_seconds=max(int(remaining_s), 1), **kwargs
        )
        for event in stream:
            item = event["object"]
            resource_version = item.metadata.resource_version
            if event["type"] == "DELETED":
                objects.pop(item.metadata.uid, None)
            else:
                objects[item.metadata.uid] = item
            if predicate(list(objects.values())):
                break
    return list(objects.values())


def _summary(item: Any) -> str:
    status = getattr(item, "status", None)
    phase = getattr(status, "phase", None)
    conditions = getattr(status, "conditions", None) or []
    return str(phase or [c.type for c in conditions if c.status == "True"])


def job_condition(job: client.V1Job, *types: str) -> client.V1JobCondition | None:
    """The first true condition of one of `types` (e.g. Complete, Failed)."""
    for condition in (job.status and job.status.conditions) or []:
        if condition.type in types and condition.status == "True":
            return condition
    return None


def wait_job_finished(batch: client.BatchV1Api, namespace: str, name: str, timeout_s: float) -> client.V1Job:
    """The Job once it is Complete or Failed."""
    jobs = wait_for(
        batch.list_namespaced_job,
        lambda items: any(job_condition(job, "Complete", "Failed") for job in items),
        timeout_s=timeout_s,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )
    job: client.V1Job = jobs[0]
    return job


def wait_pod_terminated(
    core: client.CoreV1Api, namespace: str, job_name: str, timeout_s: float
) -> client.V1Pod:
    """The Job's pod once it reached Succeeded or Failed."""
    pods = wait_for(
        core.list_namespaced_pod,
        lambda items: any(pod.status.phase in ("Succeeded", "Failed") for pod in items),
        timeout_s=timeout_s,
        namespace=namespace,
        label_selector=f"batch.kubernetes.io/job-name={job_name}",
    )
    terminated: client.V1Pod = next(pod for pod in pods if pod.status.phase in ("Succeeded", "Failed"))
    return terminated


def wait_gone(list_fn: Callable[..., Any], timeout_s: float, **kwargs: Any) -> None:
    """Until nothing matches (objects deleted for good, finalizers and all)."""
    wait_for(list_fn, lambda items: not items, timeout_s=timeout_s, **kwargs)
