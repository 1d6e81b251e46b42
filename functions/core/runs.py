"""The port of the asynchronous path: start a run, ask for its report later, or stop it.

`ExecutionBackend.run` holds its caller for the whole run; a long run is instead submitted, polled and, on
any failure or a cancel, cancelled, each by a separate short call (a Step Functions task, or one tick of the
local dispatcher). A run is known by its *run id*: the task's `execution_id`, which is derived from the
execution's name (`run_id_for`). So whoever knows the execution can stop its run, even when nothing it
submitted ever came back (a stopped Step Functions execution runs no Catch; a crashed submit returned
nothing).
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from functions.core.protocol import RunnerReport, RunnerTask

# Ids this service makes itself (uuid4 hex, or a hashed Idempotency-Key) are used as they are.
_SERVICE_ID = re.compile(r"^[0-9a-f]{32}$")
RUN_ID_CHARS = 32


class RunPort(Protocol):
    """Implemented by each backend (functions/backends/*/runs.py)."""

    name: str

    def submit(self, task: RunnerTask) -> str:
        """Start `task` and return its run id (`task.execution_id`); submitting the same id twice starts
        one run. Raises CapacityExhaustedError when no run can start now."""
        ...

    def poll(self, run_id: str) -> RunnerReport | None:
        """None while the run goes on; its report once it has ended, after which the run's resources are
        released and the id is unknown. NotFoundError for an id this backend does not know."""
        ...

    def cancel(self, run_id: str) -> None:
        """Stop the run and release everything it holds; an unknown or finished id is fine."""
        ...


def run_id_for(execution_name: str) -> str:
    """The run id of an execution: its own name when this service made it, else a digest of the name.

    Other workflows may name their executions with any of up to 80 characters; a digest keeps the run id
    (and the Job name derived from it) short, lowercase and distinct for distinct names.
    """
    if _SERVICE_ID.match(execution_name):
        return execution_name
    return hashlib.sha256(execution_name.encode("utf-8")).hexdigest()[:RUN_ID_CHARS]
