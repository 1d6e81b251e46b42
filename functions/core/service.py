"""The service functions the handlers call: one call per endpoint, models in and out."""

from __future__ import annotations

from dataclasses import dataclass

from functions.core.backend import ExecutionBackend
from functions.core.languages import LanguageRegistry
from functions.core.models import ExecuteRequest, ExecuteResponse, HealthResponse, LanguageInfo
from functions.core.results import build_response
from functions.core.spec import LimitPolicy, build_task


@dataclass(frozen=True, slots=True)
class ExecutionService:
    backend: ExecutionBackend
    registry: LanguageRegistry
    policy: LimitPolicy
    # Time the caller may wait for one synchronous run, all test cases included.
    sync_budget_s: float

    def execute(self, request: ExecuteRequest) -> ExecuteResponse:
        task = build_task(request, self.registry, self.policy)
        report = self.backend.run(task, budget_s=self.sync_budget_s)
        return build_response(task, report, include_test_results=request.test_cases is not None)

    def languages(self) -> list[LanguageInfo]:
        return [
            LanguageInfo(
                name=language.name,
                display_name=language.display_name,
                aliases=list(language.aliases),
                version=language.version,
                compiled=language.compiled,
                file_name=language.file_name,
            )
            for language in self.registry.all()
        ]

    def health(self) -> HealthResponse:
        return HealthResponse(backend=self.backend.name)
