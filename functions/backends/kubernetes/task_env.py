"""The task as a pod carries it: in environment variables, base64 of its JSON cut into env-sized pieces.

The runner (runners/runner/runner_documents.py) reads the same names; the backend reads a Job's own task back
(`job_task`) to know the shape of its report without anything else.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from kubernetes.client import V1EnvVar, V1Job

from functions.backends.kubernetes.constants import (
    RUNNER_CONTAINER,
    TASK_CHUNK_BYTES,
    TASK_CHUNK_ENV_PREFIX,
    TASK_CHUNKS_ENV,
)
from functions.core.errors import BackendUnavailableError
from functions.core.protocol import RunnerTask


def encode_task_chunks(task: RunnerTask) -> list[str]:
    """Base64 of the task JSON, cut into env-sized pieces (each env string must stay under 128 KiB)."""
    encoded = base64.b64encode(task.model_dump_json().encode("utf-8")).decode("ascii")
    return [encoded[start : start + TASK_CHUNK_BYTES] for start in range(0, len(encoded), TASK_CHUNK_BYTES)]


def task_env(task: RunnerTask) -> list[V1EnvVar]:
    chunks = encode_task_chunks(task)
    return [
        V1EnvVar(name=TASK_CHUNKS_ENV, value=str(len(chunks))),
        *(
            V1EnvVar(name=f"{TASK_CHUNK_ENV_PREFIX}{index}", value=chunk)
            for index, chunk in enumerate(chunks)
        ),
    ]


def decode_task_env(env: Mapping[str, str]) -> RunnerTask:
    """The inverse of `task_env`, as the runner does it (and the backend, for a Job's expectations)."""
    count = int(env[TASK_CHUNKS_ENV])
    encoded = "".join(env[f"{TASK_CHUNK_ENV_PREFIX}{index}"] for index in range(count))
    return RunnerTask.model_validate_json(base64.b64decode(encoded, validate=True))


def job_task(job: V1Job) -> RunnerTask:
    """The task as the Job's runner container carries it (cases, limits; the source only when interpreted)."""
    spec = job.spec.template.spec if job.spec and job.spec.template else None
    containers = spec.containers if spec is not None else []
    runner = next((container for container in containers if container.name == RUNNER_CONTAINER), None)
    if runner is None:
        raise BackendUnavailableError("the Job has no runner container")
    try:
        return decode_task_env({var.name: var.value or "" for var in runner.env or []})
    except (KeyError, ValueError) as exc:
        raise BackendUnavailableError(f"the Job's runner container carries no readable task: {exc}") from exc
