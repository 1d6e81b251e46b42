"""How long a run may take by its own limits: each container's time, the Job's deadline.

The runner ends each step by its own time; the Job's `activeDeadlineSeconds` adds a grace for starting
containers (and pulling images); the service's wait gives each container its time plus a small grace from
when it is seen running (backend.wait_times_s).
"""

from __future__ import annotations

import math

from functions.backends.kubernetes.constants import COMPILE_CONTAINER, RUNNER_CONTAINER
from functions.core.protocol import RunnerTask


def container_times_s(task: RunnerTask) -> dict[str, float]:
    """How long each container may run by the task's own limits: the compile step, and every case, each
    within the task's budget. Its runner ends by then."""
    budget_s = task.limits.total_budget_s
    times = {RUNNER_CONTAINER: min(budget_s, len(task.cases) * task.run.timeout_s)}
    if task.compile is not None:
        times[COMPILE_CONTAINER] = min(budget_s, task.compile.timeout_s)
    return times


def run_time_s(task: RunnerTask) -> float:
    """How long the whole run may take by its own limits: the compile step and every case, within the
    task's budget. The Job's deadline is measured from it."""
    return min(task.limits.total_budget_s, sum(container_times_s(task).values()))


def active_deadline_s(task: RunnerTask, grace_s: float) -> int:
    """The Job's own deadline: the run's time plus a grace for starting containers (and pulling images)."""
    return math.ceil(run_time_s(task) + grace_s)
