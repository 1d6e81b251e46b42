"""The port every execution backend implements (local sandbox, Kubernetes Job, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from functions.core.languages import LanguageSpec
from functions.core.protocol import RunnerReport, RunnerTask


@dataclass(frozen=True, slots=True)
class Toolchain:
    """Whether a backend can run a language now, and the toolchain's own version."""

    available: bool
    version: str


class ExecutionBackend(Protocol):
    """Runs one runner task to completion and returns the runner's report.

    Implementations fill in what the runner cannot observe (a memory kill of the whole sandbox, a
    deadline kill) and raise `TransientError` subclasses for capacity and infrastructure failures.
    """

    name: str

    def run(self, task: RunnerTask, *, budget_s: float) -> RunnerReport:
        """Run `task`, giving up with `DeadlineExceededError` after `budget_s` seconds."""
        ...

    def toolchain(self, language: LanguageSpec) -> Toolchain:
        """Cheap after the first call for a language (versions are measured once per toolchain)."""
        ...

    def close(self) -> None:
        """Release what the backend holds (sandboxes started ahead of demand); idempotent."""
        ...
