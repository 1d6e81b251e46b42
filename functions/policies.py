"""The settings' limits as the core's limit policies: one for /execute, one for the asynchronous path."""

from __future__ import annotations

from dataclasses import replace

from functions.core.spec import LimitPolicy
from functions.settings import Settings


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


def async_policy(settings: Settings) -> LimitPolicy:
    """/executions and the workflow: the synchronous limits, but a run (compile and every case) may take
    up to EXEC_MAX_ASYNC_TIMEOUT_S, and so may one case."""
    return replace(
        sync_policy(settings),
        max_timeout_s=settings.max_async_timeout_s,
        total_budget_s=settings.max_async_timeout_s,
    )
