"""Real runner, real sandbox: a LocalBackend and a helper that runs one program and decodes its output."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from functions.backends.local.backend import LocalBackend, create_backend
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.core.protocol import RunnerReport, RunnerTask
from functions.core.results import decode_text
from functions.core.spec import build_task
from functions.core.verdicts import Verdict
from functions.settings import Settings
from functions.wiring import sync_policy


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
    # The service's own policy; only the defaults a test does not set are made smaller and quicker.
    policy = replace(
        sync_policy(settings), default_timeout_s=5.0, total_budget_s=20.0, default_memory_limit_mb=128
    )

    def run(code: str, *, language: str = "python", budget_s: float = 60.0, **fields: object) -> Run:
        request = ExecuteRequest.model_validate(
            {"language": language, "code": code, "encoding": "text", **fields}
        )
        task = build_task(request, registry, policy)
        return Run(task=task, report=backend.run(task, budget_s=budget_s))

    return run
