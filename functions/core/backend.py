"""The port every execution backend implements (local sandbox, Kubernetes Job, ...)."""

from __future__ import annotations

from typing import Protocol

from functions.core.protocol import RunnerReport, RunnerTask


class ExecutionBackend(Protocol):
    """Runs one runner task to completion and returns the runner's report.

    Implementations fill in what the runner cannot observe (a memory kill of the whole sandbox, a
    deadline kill) and raise `TransientError` subclasses for capacity and infrastructure failures.
    """

    name: str

    def run(self, task: RunnerTask, *, budget_s: float) -> RunnerReport:
        """Run `task`, giving up with `DeadlineExceededError` after `budget_s` seconds."""
        ...
