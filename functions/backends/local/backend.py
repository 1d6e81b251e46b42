"""LocalBackend: the runner in bubblewrap on this machine, a bounded number at a time."""

from __future__ import annotations

import time

from functions.backends.local.pool import SlotPool
from functions.backends.local.reports import interpret_outcome
from functions.backends.local.sandbox import SandboxConfig, config_from_settings, run_runner_sandboxed
from functions.core.errors import DeadlineExceededError
from functions.core.protocol import RunnerReport, RunnerTask
from functions.settings import Settings


class LocalBackend:
    name = "local"

    def __init__(self, *, config: SandboxConfig, pool: SlotPool, kill_grace_s: float) -> None:
        self.config = config
        self.pool = pool
        self.kill_grace_s = kill_grace_s

    def run(self, task: RunnerTask, *, budget_s: float) -> RunnerReport:
        started_s = time.monotonic()
        with self.pool.slot(wait_s=budget_s):
            remaining_s = budget_s - (time.monotonic() - started_s)
            if remaining_s <= 0:
                raise DeadlineExceededError(
                    "the request's time budget ran out while waiting for a sandbox",
                    execution_id=task.execution_id,
                )
            # The runner stops itself after total_budget_s; the sandbox kill is the backstop.
            natural_s = task.limits.total_budget_s + self.kill_grace_s
            outcome = run_runner_sandboxed(
                language=task.language,
                runner_env=None,
                stdin=task.model_dump_json().encode("utf-8"),
                memory_limit_mb=task.limits.memory_limit_mb,
                max_processes=task.limits.max_processes,
                wall_timeout_s=min(remaining_s, natural_s),
                config=self.config,
            )
        return interpret_outcome(task, outcome, deadline_cut=remaining_s < natural_s)


def create_backend(settings: Settings) -> LocalBackend:
    return LocalBackend(
        config=config_from_settings(settings),
        pool=SlotPool(size=settings.local_max_concurrency, queue_wait_s=settings.local_queue_wait_s),
        kill_grace_s=settings.local_kill_grace_s,
    )
