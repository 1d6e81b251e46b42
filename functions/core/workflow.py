"""The asynchronous run as three short steps: submit, poll (until done), clean up.

The Step Functions state machine (cdk/workflow.py) calls them from its Submit, Poll and Cleanup tasks; the
local dispatcher (functions/sqlite_executions) calls the same methods from its loop. What travels between the
steps is `RunningState`: the run id, the judging plan (expected outputs' digests, never the code or stdin)
and the deadline, so Poll judges the report without any store of its own. Poll ends with `DoneState`,
whose `result` is exactly the `/execute` response, cut to fit a Step Functions state.

A compile error, a time limit or a wrong answer is a result. Only infrastructure failures raise; their
names (`functions.core.errors.error_name`) are what the state machine's Retry and Catch match on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.core.errors import (
    BackendUnavailableError,
    CapacityExhaustedError,
    DeadlineExceededError,
    error_name,
)
from functions.core.fitting import fit_response
from functions.core.judging import JudgingPlan
from functions.core.languages import LanguageRegistry
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.protocol import RunnerTask
from functions.core.results import RejectionListener, build_response
from functions.core.runs import RunPort, run_id_for
from functions.core.spec import LimitPolicy, prepare_run

# Step Functions' limit on a state's input or output (UTF-8 JSON); also the limit of an execution's input.
MAX_STATE_BYTES = 256 * 1024
# Room for DoneState's own fields around the result.
_DONE_STATE_OVERHEAD_BYTES = 1024
# Beyond the run's own limits: starting a pod (scheduling, image pull) or a sandbox, and a last poll.
RUN_DEADLINE_GRACE_S = 60.0
# Above the run's deadline: the last polls and the cleanup happen before the execution times out.
EXECUTION_TIMEOUT_MARGIN_S = 120.0


@dataclass(frozen=True, slots=True)
class RetryRule:
    """A Step Functions Retry block: errors with these names are retried, the others are not."""

    error_names: tuple[str, ...]
    interval_s: int
    max_attempts: int
    backoff_rate: float

    def delay_s(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1-based)."""
        return float(self.interval_s * self.backoff_rate ** (attempt - 1))


# Transient failures and how each task retries them (the state machine's Retry blocks and the local
# dispatcher read this one table). A full namespace quota clears as other runs end: wait longer for it.
# The Kubernetes client has already retried an API error a few times before it becomes BackendUnavailable.
RETRY_RULES: tuple[RetryRule, ...] = (
    RetryRule(
        (error_name(CapacityExhaustedError.error_code),), interval_s=5, max_attempts=5, backoff_rate=2.0
    ),
    RetryRule(
        (error_name(BackendUnavailableError.error_code),), interval_s=1, max_attempts=2, backoff_rate=2.0
    ),
)


def retry_rule_for(name: str) -> RetryRule | None:
    return next((rule for rule in RETRY_RULES if name in rule.error_names), None)


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """Waits between polls: `initial_s` three times, then a second more every third poll, up to `max_s`.

    With 1 s to 5 s a 2 s run is seen done after about 3 s, and a 10-minute run costs 3 transitions per
    5 s instead of per second (docs/async.md counts them).
    """

    initial_s: int
    max_s: int

    def wait_s(self, polls: int) -> int:
        return min(self.max_s, self.initial_s + polls // 3)


class RunningState(BaseModel):
    """Submit's output and Poll's input while the run goes on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    done: Literal[False] = False
    wait_s: int = Field(ge=0, description="seconds the Wait state waits before the next poll")
    run_id: str = Field(min_length=1)
    plan: JudgingPlan
    deadline_epoch_s: float
    polls: int = Field(default=0, ge=0)


class DoneState(BaseModel):
    """Poll's output once the run has ended: the state machine's output is `result`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    done: Literal[True] = True
    result: ExecuteResponse


@dataclass(frozen=True, slots=True)
class WorkflowService:
    runs: RunPort
    registry: LanguageRegistry
    policy: LimitPolicy  # the asynchronous entry point's limits
    schedule: PollSchedule
    clock: Callable[[], float]  # epoch seconds: the deadline travels between processes
    on_report_rejected: RejectionListener | None = None

    def submit(self, request: ExecuteRequest, *, execution_name: str) -> RunningState:
        """Validate like /execute (with the asynchronous limits) and start the run."""
        prepared = prepare_run(request, self.registry, self.policy, execution_id=run_id_for(execution_name))
        run_id = self.runs.submit(prepared.task)
        return RunningState(
            wait_s=self.schedule.wait_s(0),
            run_id=run_id,
            plan=prepared.plan,
            deadline_epoch_s=self.clock() + run_deadline_s(prepared.task),
        )

    def poll(self, state: RunningState) -> RunningState | DoneState:
        report = self.runs.poll(state.run_id)
        if report is None:
            if self.clock() > state.deadline_epoch_s:
                raise DeadlineExceededError(
                    "the run did not end by its deadline; the backend lost track of it",
                    execution_id=state.plan.execution_id,
                )
            polls = state.polls + 1
            return state.model_copy(update={"polls": polls, "wait_s": self.schedule.wait_s(polls)})
        response = build_response(state.plan, report, on_rejected=self.on_report_rejected)
        return DoneState(result=fit_response(response, MAX_STATE_BYTES - _DONE_STATE_OVERHEAD_BYTES))

    def cleanup(self, *, execution_name: str) -> None:
        """Stop whatever run the execution started, if any (after a failure, or when it was stopped)."""
        self.runs.cancel(run_id_for(execution_name))


def run_deadline_s(task: RunnerTask) -> float:
    """How long a run may take at most, from its submission: its own limits plus the grace above."""
    compile_s = task.compile.timeout_s if task.compile is not None else 0.0
    return compile_s + task.limits.total_budget_s + RUN_DEADLINE_GRACE_S


def max_execution_s(policy: LimitPolicy) -> float:
    """The longest an asynchronous execution can take under `policy` (the state machine's timeout is
    above this)."""
    return policy.compile_timeout_s + max(policy.total_budget_s, policy.max_timeout_s) + RUN_DEADLINE_GRACE_S


def execution_timeout_s(policy: LimitPolicy) -> int:
    """How long an execution may last before it is TIMED_OUT: the state machine's timeout and the local
    dispatcher's, above the longest run `policy` allows so a run always ends (and is cleaned up) first."""
    return math.ceil(max_execution_s(policy) + EXECUTION_TIMEOUT_MARGIN_S)
