"""The asynchronous port of the local backend: each submitted run on a thread of this process.

A run holds one slot of its own pool (`EXEC_ASYNC_MAX_RUNNING`) from submit to its end, so submit answers
CapacityExhaustedError at once rather than queueing. Cancel sets the run's cancel event, which kills the
sandbox running at that moment (the supervisor watches it, `keeper.TaskRunner`), and waits for the thread
to finish: when cancel returns, nothing of the run is left. The runs live in this process only, so they
end with it; the local dispatcher resubmits what a restart interrupted.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field

from functions.backends.local.backend import LocalBackend
from functions.backends.local.keeper import ExecutionCancelledError, TaskRunner
from functions.backends.local.pool import SlotPool
from functions.core.errors import BackendUnavailableError, ExecutionError, NotFoundError
from functions.core.protocol import RunnerReport, RunnerTask
from functions.settings import Settings

logger = logging.getLogger(__name__)

# The run's own budget decides its verdicts; the supervisor's caller deadline sits just beyond it.
SUPERVISOR_MARGIN_S = 5.0
# How long cancel waits for the killed sandbox to be cleaned up.
CANCEL_JOIN_S = 30.0


@dataclass
class _Run:
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    report: RunnerReport | None = None
    error: ExecutionError | None = None
    thread: threading.Thread | None = None


class LocalRuns:
    name = "local"

    def __init__(self, runner: TaskRunner, pool: SlotPool) -> None:
        self.runner = runner
        self.pool = pool
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def submit(self, task: RunnerTask) -> str:
        run_id = task.execution_id
        with self._lock:
            if run_id in self._runs:
                return run_id  # a retried submit: the run is already going
            slot = ExitStack()
            slot.enter_context(self.pool.slot(wait_s=0))  # CapacityExhaustedError when every slot is taken
            run = _Run()
            run.thread = threading.Thread(
                target=self._run, args=(task, run, slot), name=f"run-{run_id[:12]}", daemon=True
            )
            self._runs[run_id] = run
        run.thread.start()
        return run_id

    def poll(self, run_id: str) -> RunnerReport | None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise NotFoundError(f"no local run {run_id!r} (runs end with the process that started them)")
            if not run.done.is_set():
                return None
            if run.error is not None:
                raise run.error  # kept until cancel: a retried poll sees the same failure
            del self._runs[run_id]
        return run.report

    def cancel(self, run_id: str) -> None:
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is None:
            return
        run.cancel.set()
        if run.thread is not None and run.thread is not threading.current_thread():
            run.thread.join(CANCEL_JOIN_S)

    def active(self) -> list[str]:
        """The run ids this process still holds (running, or ended and not yet polled)."""
        with self._lock:
            return sorted(self._runs)

    def _run(self, task: RunnerTask, run: _Run, slot: ExitStack) -> None:
        try:
            budget_s = task.limits.total_budget_s + SUPERVISOR_MARGIN_S
            run.report = self.runner.run(task, budget_s=budget_s, cancel=run.cancel)
        except ExecutionCancelledError:
            pass  # nobody waits for a cancelled run's report
        except ExecutionError as exc:
            run.error = exc
        except Exception as exc:  # a run's failure is reported to its poller, not lost
            logger.exception("local run failed", extra={"run_id": task.execution_id})
            run.error = BackendUnavailableError(f"the local run failed: {type(exc).__name__}: {exc}")
        finally:
            slot.close()
            run.done.set()


def create_runs(backend: LocalBackend, settings: Settings) -> LocalRuns:
    """Runs on `backend`'s supervisor, with a pool of their own beside the synchronous requests'."""
    return LocalRuns(backend.runner, SlotPool(size=settings.async_max_running, queue_wait_s=0.0))
