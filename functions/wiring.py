"""Composition root: settings -> policy, registry, backend -> service. Built once per container."""

from __future__ import annotations

from functools import cache

from functions.backends.registry import create_backend
from functions.core.languages import load_registry
from functions.core.service import ExecutionService
from functions.core.spec import LimitPolicy
from functions.observability import logger
from functions.settings import Settings, get_settings


def sync_policy(settings: Settings) -> LimitPolicy:
    return LimitPolicy(
        default_timeout_s=settings.default_timeout_s,
        max_timeout_s=settings.max_timeout_s,
        compile_timeout_s=settings.compile_timeout_s,
        total_budget_s=settings.sync_budget_s,
        default_memory_limit_mb=settings.default_memory_limit_mb,
        min_memory_limit_mb=settings.min_memory_limit_mb,
        max_memory_limit_mb=settings.max_memory_limit_mb,
        max_code_bytes=settings.max_code_bytes,
        max_stdin_bytes=settings.max_stdin_bytes,
        output_limit_bytes=settings.output_limit_bytes,
        max_test_cases=settings.max_test_cases,
        max_args=settings.max_args,
        max_arg_bytes=settings.max_arg_bytes,
        max_processes=settings.max_processes,
        max_file_size_bytes=settings.max_file_size_bytes,
    )


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
