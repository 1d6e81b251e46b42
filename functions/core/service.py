"""The service functions the handlers call: one call per endpoint, models in and out."""

from __future__ import annotations

from dataclasses import dataclass, field

from functions.core.backend import ExecutionBackend
from functions.core.errors import LanguageUnavailableError
from functions.core.languages import LanguageRegistry
from functions.core.models import ExecuteRequest, ExecuteResponse, HealthResponse, LanguageInfo
from functions.core.results import RejectionListener, build_response
from functions.core.spec import LimitPolicy, prepare_run

# Seconds kept back from the caller's remaining time to clean up and write the response.
RESPONSE_MARGIN_S = 2.0


@dataclass(frozen=True, slots=True)
class ExecutionService:
    backend: ExecutionBackend
    registry: LanguageRegistry
    policy: LimitPolicy
    # Time the caller may wait for one synchronous run, all test cases included.
    sync_budget_s: float
    # Told (execution id, reason) whenever a report fails its checks; the composition root logs it.
    on_report_rejected: RejectionListener | None = field(default=None)

    def execute(self, request: ExecuteRequest, *, caller_remaining_s: float | None = None) -> ExecuteResponse:
        """Run one request; `caller_remaining_s` (a Lambda's remaining time) can only shorten the budget."""
        prepared = prepare_run(request, self.registry, self.policy)
        if not self.backend.toolchain(prepared.task.language).available:
            raise LanguageUnavailableError(
                f"{prepared.task.language.display_name} is not available on this server (its toolchain is missing)"
            )
        report = self.backend.run(prepared.task, budget_s=self.budget_s(caller_remaining_s))
        return build_response(prepared.plan, report, on_rejected=self.on_report_rejected)

    def budget_s(self, caller_remaining_s: float | None) -> float:
        if caller_remaining_s is None:
            return self.sync_budget_s
        # Keep time to delete the Job and answer before the caller (API Gateway, Lambda) gives up.
        return max(0.0, min(self.sync_budget_s, caller_remaining_s - RESPONSE_MARGIN_S))

    def languages(self) -> list[LanguageInfo]:
        infos = []
        for language in self.registry.all():
            toolchain = self.backend.toolchain(language)
            infos.append(
                LanguageInfo(
                    name=language.name,
                    display_name=language.display_name,
                    aliases=list(language.aliases),
                    version=toolchain.version or language.version,
                    available=toolchain.available,
                    compiled=language.compiled,
                    file_name=language.file_name,
                )
            )
        return infos

    def health(self) -> HealthResponse:
        return HealthResponse(backend=self.backend.name)
