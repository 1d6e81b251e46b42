"""Real sandbox, real toolchains: a LocalBackend and a helper that runs one program and judges it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest

from functions.backends.local.backend import LocalBackend, create_backend
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.protocol import RunnerReport, RunnerTask
from functions.core.results import build_response
from functions.core.spec import prepare_run
from functions.core.verdicts import Verdict
from functions.settings import Settings
from functions.wiring import sync_policy
from tests.sandbox_support import assert_nothing_left, sandbox_settings


@dataclass(frozen=True, slots=True)
class Run:
    task: RunnerTask
    report: RunnerReport
    response: ExecuteResponse

    @property
    def verdict(self) -> Verdict:
        return self.response.verdict

    @property
    def stdout(self) -> str:
        return self.response.stdout

    @property
    def stderr(self) -> str:
        return self.response.stderr


RunProgram = Callable[..., Run]


@pytest.fixture(scope="session", params=[2, 0], ids=["warm", "cold"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Every attack runs against sandboxes started ahead of demand, and against ones started on demand."""
    return sandbox_settings(local_queue_wait_s=60.0, local_warm_pool_size=request.param)


@pytest.fixture(scope="session")
def backend(settings: Settings) -> Iterator[LocalBackend]:
    backend = create_backend(settings)
    yield backend
    backend.close()
    assert_nothing_left(backend.host, settings)


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
        prepared = prepare_run(request, registry, policy)
        report = backend.run(prepared.task, budget_s=budget_s)
        return Run(task=prepared.task, report=report, response=build_response(prepared.plan, report))

    return run
