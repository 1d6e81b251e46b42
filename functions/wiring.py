"""Composition root: settings -> policy, registry, backend -> service. Built once per container."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from functions.backends.registry import create_backend, create_runs
from functions.core.backend import ExecutionBackend
from functions.core.executions import AsyncExecutionService, ExecutionStore
from functions.core.judge0.service import Judge0Service
from functions.core.languages import load_registry
from functions.core.service import ExecutionService
from functions.core.workflow import PollSchedule, WorkflowService, execution_timeout_s
from functions.observability import logger, record_execution
from functions.policies import async_policy, sync_policy
from functions.settings import Settings, get_settings
from functions.sqlite_executions.dispatcher import Dispatcher
from functions.sqlite_executions.owners import OwnerLease
from functions.sqlite_executions.store import SqliteExecutionStore

__all__ = ["async_policy", "sync_policy"]  # the policies, re-exported for the callers that build services


def log_rejected_report(execution_id: str, reason: str) -> None:
    """A report that failed the core's checks: the run answered internal_error; operators need the why."""
    logger.error("report rejected", extra={"execution_id": execution_id, "reason": reason})


def build_service(settings: Settings) -> ExecutionService:
    return ExecutionService(
        backend=create_backend(settings),
        registry=load_registry(settings.runners_dir),
        policy=sync_policy(settings),
        sync_budget_s=settings.sync_budget_s,
        on_report_rejected=log_rejected_report,
    )


@cache
def get_service() -> ExecutionService:
    return build_service(get_settings())


def close_service() -> None:
    """Release the process's service (its backend's idle sandboxes), if it was built."""
    if get_service.cache_info().currsize:
        get_service().backend.close()


def build_workflow(settings: Settings, backend: ExecutionBackend) -> WorkflowService:
    return WorkflowService(
        runs=create_runs(backend, settings),
        registry=load_registry(settings.runners_dir),
        policy=async_policy(settings),
        schedule=PollSchedule(initial_s=settings.async_poll_initial_s, max_s=settings.async_poll_max_s),
        clock=time.time,
    )


@cache
def get_workflow() -> WorkflowService:
    """The steps of an asynchronous run on this process's backend (the workflow tasks, the dispatcher)."""
    return build_workflow(get_settings(), get_service().backend)


def local_executions_dir(data_dir: Path) -> Path:
    """Where local executions live (`make run`, `run --async`): their SQLite database and its owner lease."""
    return data_dir / "executions"


def local_store(settings: Settings) -> SqliteExecutionStore:
    return SqliteExecutionStore(
        local_executions_dir(settings.data_dir),
        max_unfinished=settings.async_max_queued,
        retry_after_s=max(1, settings.async_poll_max_s),
    )


def build_executions(settings: Settings) -> AsyncExecutionService:
    store: ExecutionStore
    if settings.state_machine_arn:
        # Imported here: only an AWS deployment needs boto3 for this.
        from functions.aws.step_functions import create_store  # noqa: PLC0415

        store = create_store(
            settings.state_machine_arn,
            region=settings.aws_region,
            on_stopped=lambda execution_id: get_workflow().cleanup(execution_name=execution_id),
        )
    else:
        store = local_store(settings)
    return AsyncExecutionService(
        store=store, registry=load_registry(settings.runners_dir), policy=async_policy(settings)
    )


@cache
def get_executions() -> AsyncExecutionService:
    return build_executions(get_settings())


def get_judge0() -> Judge0Service:
    """The /judge0 API on this process's services (built per call: it holds nothing of its own)."""
    return Judge0Service(
        runs=get_service(),
        executions=get_executions(),
        max_queue_size=get_settings().async_max_queued,
        clock=lambda: datetime.now(UTC),
        on_run_finished=record_execution,
    )


def build_dispatcher(settings: Settings, workflow: WorkflowService) -> Dispatcher:
    """The runner of local executions (`make run`, `run --async`); None of this in AWS."""
    return Dispatcher(
        local_store(settings),
        workflow,
        OwnerLease(local_executions_dir(settings.data_dir) / "owners"),
        max_running=settings.async_max_running,
        execution_timeout_s=execution_timeout_s(async_policy(settings)),
    )
