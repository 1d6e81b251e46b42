"""Real runner, real sandbox: a LocalBackend and a helper that runs one program and decodes its output."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from functions.backends.local.backend import LocalBackend, create_backend
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.protocol import RunnerReport, RunnerTask
from functions.core.results import decode_text
from functions.core.spec import LimitPolicy, build_task
from functions.core.verdicts import Verdict
from functions.settings import Settings


@dataclass(frozen=True, slots=True)
class Run:
    task: RunnerTask
    report: RunnerReport

    @property
    def verdict(self) -> Verdict:
        return self.report.cases[0].verdict

    @property
    def stdout(self) -> str:
        return decode_text(self.report.cases[0].stdout_b64)

    @property
    def stderr(self) -> str:
        return decode_text(self.report.cases[0].stderr_b64)


RunProgram = Callable[..., Run]


@pytest.fixture(scope="session")
def settings() -> Settings:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    return Settings(local_cgroup_root=f"code-exec-security-{uuid.uuid4().hex[:8]}", local_queue_wait_s=60.0)


@pytest.fixture(scope="session")
def backend(settings: Settings) -> Iterator[LocalBackend]:
    backend = create_backend(settings)
    yield backend
    if backend.config.cgroups is not None:
        for parent in backend.config.cgroups.parents:
            assert [child.name for child in parent.iterdir() if child.is_dir()] == []
            parent.rmdir()


@pytest.fixture(scope="session")
def run_program(backend: LocalBackend, settings: Settings) -> RunProgram:
    registry = load_registry(settings.runners_dir)
    policy = LimitPolicy(
        default_timeout_s=5.0,
        max_timeout_s=settings.max_timeout_s,
        compile_timeout_s=settings.compile_timeout_s,
        total_budget_s=20.0,
        default_memory_limit_mb=128,
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

    def run(code: str, *, language: str = "python", budget_s: float = 60.0, **fields: object) -> Run:
        request = ExecuteRequest.model_validate(
            {"language": language, "code": code, "encoding": "text", **fields}
        )
        task = build_task(request, registry, policy)
        return Run(task=task, report=backend.run(task, budget_s=budget_s))

    return run
