"""The local backend's asynchronous port and the dispatcher that drives it, on the real sandbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from functions import wiring
from functions.backends.local.backend import LocalBackend, create_backend
from functions.backends.local.runs import LocalRuns
from functions.core.errors import BackendUnavailableError, CapacityExhaustedError, NotFoundError
from functions.core.executions import AsyncExecutionService, ExecutionState, ExecutionView
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.spec import prepare_run
from functions.core.verdicts import Verdict
from functions.core.workflow import WorkflowService
from functions.settings import Settings
from functions.sqlite_executions.dispatcher import Dispatcher
from functions.sqlite_executions.owners import OwnerLease
from functions.sqlite_executions.store import SqliteExecutionStore
from tests.async_support import wait_for
from tests.sandbox_support import assert_nothing_left, sandbox_settings

pytestmark = [pytest.mark.sandbox]


@dataclass
class Local:
    settings: Settings
    backend: LocalBackend
    workflow: WorkflowService
    store: SqliteExecutionStore
    service: AsyncExecutionService

    @property
    def runs(self) -> LocalRuns:
        assert isinstance(self.workflow.runs, LocalRuns)
        return self.workflow.runs

    def dispatcher(self, **overrides: float) -> Dispatcher:
        dispatcher = wiring.build_dispatcher(self.settings, self.workflow)
        dispatcher.store = self.store
        for name, value in overrides.items():
            setattr(dispatcher, name, value)
        return dispatcher

    def sandboxes_running(self) -> int:
        """Sandboxes with a live process: each has its own cgroup (one directory per hierarchy under v1);
        a finished one's empty directories go a moment later (torn down off the response path)."""
        return len(
            {
                child.name
                for parent in self.backend.host.cgroups.parents
                for child in parent.iterdir()
                if child.is_dir() and (child / "cgroup.procs").read_text().split()
            }
        )

    def attempts(self, execution_id: str) -> int:
        with sqlite3.connect(self.store.path) as db:
            (attempts,) = db.execute(
                "SELECT attempts FROM executions WHERE execution_id = ?", (execution_id,)
            ).fetchone()
        return int(attempts)


@pytest.fixture
def local() -> Iterator[Local]:
    # No sandbox started ahead of demand: every live sandbox here is a run's.
    settings = sandbox_settings(
        async_poll_initial_s=0, async_poll_max_s=1, async_max_running=2, local_warm_pool_size=0
    )
    backend = create_backend(settings)
    workflow = wiring.build_workflow(settings, backend)
    store = wiring.local_store(settings)
    service = wiring.build_executions(settings)
    yield Local(settings, backend, workflow, store, service)
    assert workflow.runs.active() == []  # type: ignore[attr-defined]
    backend.close()
    assert_nothing_left(backend.host, settings)


def python(code: str, **fields: object) -> ExecuteRequest:
    return ExecuteRequest.model_validate({"language": "python", "code": code, "encoding": "text", **fields})


def finished(local: Local, execution_id: str, timeout_s: float = 60) -> ExecutionView:
    return wait_for(
        lambda: local.store.describe(execution_id),
        lambda view: view.state is not ExecutionState.RUNNING,
        timeout_s=timeout_s,
    )


SLEEPER = "import time\ntime.sleep(30)"


# --- LocalRuns -----------------------------------------------------------------------------------------


def test_a_run_is_polled_until_its_report_then_forgotten(local: Local) -> None:
    prepared = prepare_run(
        python("print('hi')"), load_registry(local.settings.runners_dir), local.workflow.policy
    )
    run_id = local.runs.submit(prepared.task)
    assert local.runs.submit(prepared.task) == run_id  # a retried submit starts nothing more
    report = wait_for(lambda: local.runs.poll(run_id), lambda found: found is not None)
    assert report is not None
    assert len(report.cases) == 1
    with pytest.raises(NotFoundError):
        local.runs.poll(run_id)


def test_cancel_kills_the_running_sandbox_before_it_returns(local: Local) -> None:
    prepared = prepare_run(
        python(SLEEPER, timeout=60), load_registry(local.settings.runners_dir), local.workflow.policy
    )
    run_id = local.runs.submit(prepared.task)
    wait_for(local.sandboxes_running, lambda count: count == 1)
    local.runs.cancel(run_id)
    assert local.sandboxes_running() == 0
    assert local.runs.active() == []
    local.runs.cancel(run_id)  # a second cancel, or one of an unknown run, is fine


def test_a_full_pool_refuses_at_once(local: Local) -> None:
    registry = load_registry(local.settings.runners_dir)
    tasks = [prepare_run(python(SLEEPER, timeout=60), registry, local.workflow.policy).task for _ in range(3)]
    started = [local.runs.submit(task) for task in tasks[:2]]
    try:
        with pytest.raises(CapacityExhaustedError):
            local.runs.submit(tasks[2])
    finally:
        for run_id in started:
            local.runs.cancel(run_id)


# --- the dispatcher ------------------------------------------------------------------------------------


def test_an_execution_runs_to_its_execute_response(local: Local) -> None:
    dispatcher = local.dispatcher()
    dispatcher.start()
    try:
        started = local.service.start(
            python("print(input()[::-1])", stdin="olleh"), idempotency_key=None, caller=""
        )
        view = finished(local, started.execution_id)
    finally:
        dispatcher.stop()
    assert view.state is ExecutionState.SUCCEEDED
    assert view.result is not None
    assert view.result.stdout == "hello\n"
    assert view.result.execution_id == started.execution_id  # the run is named after its execution


def test_executions_beyond_the_running_limit_wait_for_a_free_place(local: Local) -> None:
    # Given a dispatcher that runs two at once (the fixture's limit) and three executions
    dispatcher = local.dispatcher()
    dispatcher.start()
    try:
        started = [
            local.service.start(
                python(f"import time\ntime.sleep(1)\nprint({n})"), idempotency_key=None, caller=""
            )
            for n in range(3)
        ]
        # When two are running, the third waits unclaimed
        wait_for(lambda: local.store.running_owned(dispatcher.owner), lambda owned: len(owned) == 2)
        assert local.store.running_owned(dispatcher.owner) == {view.execution_id for view in started[:2]}
        # Then every one of them runs to its result
        views = [finished(local, view.execution_id) for view in started]
    finally:
        dispatcher.stop()
    assert [view.result.stdout if view.result else None for view in views] == ["0\n", "1\n", "2\n"]


def test_a_cancelled_execution_stops_its_sandbox_and_stays_cancelled(local: Local) -> None:
    dispatcher = local.dispatcher()
    dispatcher.start()
    try:
        started = local.service.start(python(SLEEPER, timeout=60), idempotency_key=None, caller="")
        wait_for(local.sandboxes_running, lambda count: count == 1)
        cancelled = local.service.cancel(started.execution_id)
        wait_for(local.sandboxes_running, lambda count: count == 0, timeout_s=10)
    finally:
        dispatcher.stop()
    assert cancelled.state is ExecutionState.CANCELLED
    assert local.store.describe(started.execution_id).state is ExecutionState.CANCELLED


def test_a_restart_reruns_an_interrupted_execution_once(local: Local) -> None:
    # Given an execution whose sandbox is running when its dispatcher stops
    first = local.dispatcher()
    first.start()
    started = local.service.start(
        python("import time\ntime.sleep(1)\nprint('done')"), idempotency_key=None, caller=""
    )
    wait_for(local.sandboxes_running, lambda count: count == 1)
    first.stop()
    assert local.store.describe(started.execution_id).state is ExecutionState.RUNNING
    # When another dispatcher starts on the same store
    second = local.dispatcher()
    second.start()
    try:
        view = finished(local, started.execution_id)
    finally:
        second.stop()
    # Then it ran again from the stored request and succeeded
    assert view.state is ExecutionState.SUCCEEDED
    assert view.result is not None
    assert view.result.stdout == "done\n"
    assert local.attempts(started.execution_id) == 2


def test_a_second_restart_fails_the_execution_with_a_clear_error(local: Local) -> None:
    started = local.service.start(python(SLEEPER, timeout=60), idempotency_key=None, caller="")
    for _ in range(2):
        dispatcher = local.dispatcher()
        dispatcher.start()
        wait_for(local.sandboxes_running, lambda count: count == 1)
        dispatcher.stop()
    last = local.dispatcher()
    last.start()
    try:
        view = finished(local, started.execution_id)
    finally:
        last.stop()
    assert view.state is ExecutionState.FAILED
    assert view.error is not None
    assert view.error.error == BackendUnavailableError.error_code
    assert "server restart" in view.error.message


def test_an_execution_beyond_its_timeout_is_timed_out_and_its_run_stopped(local: Local) -> None:
    dispatcher = local.dispatcher(execution_timeout_s=1.0)
    dispatcher.start()
    try:
        started = local.service.start(python(SLEEPER, timeout=60), idempotency_key=None, caller="")
        view = finished(local, started.execution_id)
    finally:
        dispatcher.stop()
    assert view.state is ExecutionState.TIMED_OUT
    assert local.sandboxes_running() == 0


def test_verdicts_are_results(local: Local) -> None:
    dispatcher = local.dispatcher()
    dispatcher.start()
    try:
        started = local.service.start(python("raise SystemExit(3)"), idempotency_key=None, caller="")
        view = finished(local, started.execution_id)
    finally:
        dispatcher.stop()
    assert view.state is ExecutionState.SUCCEEDED
    assert view.result is not None
    assert view.result.verdict is Verdict.RUNTIME_ERROR
    assert view.result.exit_code == 3


def test_a_running_dispatcher_is_alive_to_others_and_dead_once_stopped(local: Local) -> None:
    dispatcher = local.dispatcher()
    observer = OwnerLease(dispatcher.lease.directory)
    try:
        dispatcher.start()
        assert not observer.is_dead(dispatcher.owner)
        dispatcher.stop()
        assert observer.is_dead(dispatcher.owner)
    finally:
        observer.release()
