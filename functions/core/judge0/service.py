"""The calls the /judge0 routes make: one per route, Judge0's documents in and out.

`wait=true` runs on the synchronous service (the /execute path); `wait=false` and batches start
asynchronous executions (the /executions path), whose ids are the tokens.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from functions.core.errors import (
    ExecutionError,
    InvalidFieldsError,
    InvalidRequestError,
    NotFoundError,
)
from functions.core.executions import AsyncExecutionService
from functions.core.judge0.models import (
    JUDGE0_VERSION,
    MAX_BATCH_SIZE,
    About,
    BatchRequest,
    ConfigInfo,
    LanguageDetail,
    LanguageEntry,
    StatusEntry,
    SubmissionRequest,
)
from functions.core.judge0.statuses import DESCRIPTIONS, Status
from functions.core.judge0.submissions import KB_PER_MB, Translated, prefixed, refusal_of, to_execute_request
from functions.core.judge0.views import (
    Values,
    execution_id_of,
    execution_values,
    render,
    requested_fields,
    run_values,
    token_of,
)
from functions.core.languages import LanguageSpec
from functions.core.models import ExecuteResponse, LanguageInfo
from functions.core.service import ExecutionService
from functions.core.steps import expand

MAINTAINER = "code-exec (a Judge0 CE 1.13.1-compatible API)"
TOKEN_FIELDS = ("token",)


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    """The query of POST /submissions."""

    base64_encoded: bool = False
    wait: bool = False
    fields: str | None = None


@dataclass(frozen=True, slots=True)
class Judge0Service:
    runs: ExecutionService  # wait=true: the synchronous service, its limits are config_info's
    executions: AsyncExecutionService  # wait=false and batches
    max_queue_size: int  # asynchronous executions not yet ended, at most
    clock: Callable[[], datetime]
    # Told of every wait=true run's response (the composition root records its metrics, as /execute's).
    on_run_finished: Callable[[ExecuteResponse], None] | None = None

    def about(self) -> About:
        return About(version=JUDGE0_VERSION, homepage=None, source_code=None, maintainer=MAINTAINER)

    def statuses(self) -> list[StatusEntry]:
        return [StatusEntry(id=int(status), description=DESCRIPTIONS[status]) for status in Status]

    def languages(self) -> list[LanguageEntry]:
        """Every Judge0 id of a language this server can run."""
        infos = self._infos()
        return [
            LanguageEntry(id=judge0_id, name=judge0_name(infos[language.name]))
            for judge0_id, language in self.runs.registry.judge0_ids()
            if infos[language.name].available
        ]

    def language(self, language_id: str) -> LanguageDetail:
        language = self.runs.registry.by_judge0_id(int(language_id)) if language_id.isdigit() else None
        if language is None:
            raise NotFoundError(f"no language with id {language_id[:20]!r}")
        info = self._infos()[language.name]
        return LanguageDetail(
            id=int(language_id),
            name=judge0_name(info),
            is_archived=not info.available,
            source_file=language.file_name,
            compile_cmd=None if language.compile is None else self._command(language, language.compile),
            run_cmd=self._command(language, language.run),
        )

    def config_info(self) -> ConfigInfo:
        return config_info(self.runs, max_queue_size=self.max_queue_size)

    def create(
        self,
        submission: SubmissionRequest,
        options: SubmitOptions,
        *,
        caller: str,
        caller_remaining_s: float | None = None,
    ) -> Values:
        fields = requested_fields(options.fields)
        translated = self._translated(submission, base64_encoded=options.base64_encoded)
        if not options.wait:
            execution_id = self._start(translated, caller=caller)
            return {"token": token_of(execution_id)}
        created_at = self.clock()
        try:
            response = self.runs.execute(translated.request, caller_remaining_s=caller_remaining_s)
        except InvalidRequestError as exc:
            raise refusal_of(exc, translated) from exc
        if self.on_run_finished is not None:
            self.on_run_finished(response)
        values = run_values(
            response, execution_id=response.execution_id, created_at=created_at, finished_at=self.clock()
        )
        return render(values, fields, base64_encoded=options.base64_encoded)

    def create_batch(self, batch: BatchRequest, *, base64_encoded: bool, caller: str) -> list[Values]:
        """Every submission is checked before any starts: one refused refuses the batch (422, each problem
        under `submissions[<index>].<field>`), and nothing runs."""
        checked: list[Translated] = []
        problems: dict[str, list[str]] = {}
        for index, submission in enumerate(batch.submissions):
            try:
                checked.append(self._checked(submission, base64_encoded=base64_encoded))
            except InvalidFieldsError as exc:
                problems.update(prefixed(exc, f"submissions[{index}]."))
        if problems:
            raise InvalidFieldsError(problems)
        started: list[str] = []
        try:
            for translated in checked:
                started.append(self._start(translated, caller=caller))
        except ExecutionError:
            for execution_id in started:  # a batch starts whole or not at all
                with contextlib.suppress(ExecutionError):
                    self.executions.cancel(execution_id)
            raise
        return [{"token": token_of(execution_id)} for execution_id in started]

    def get(self, token: str, *, base64_encoded: bool, fields: str | None) -> Values:
        names = requested_fields(fields)
        view = self.executions.describe(execution_id_of(token))
        return render(execution_values(view), names, base64_encoded=base64_encoded)

    def get_batch(self, tokens: str, *, base64_encoded: bool, fields: str | None) -> list[Values | None]:
        """Each token's submission in order, null for a token that names none."""
        names = requested_fields(fields)
        wanted = [token.strip() for token in tokens.split(",") if token.strip()]
        if not 1 <= len(wanted) <= MAX_BATCH_SIZE:
            raise InvalidRequestError(
                f"a batch names 1 to {MAX_BATCH_SIZE} tokens, not {len(wanted)}", field="tokens"
            )
        found: list[Values | None] = []
        for token in wanted:
            try:
                view = self.executions.describe(execution_id_of(token))
            except NotFoundError:
                found.append(None)
            else:
                found.append(render(execution_values(view), names, base64_encoded=base64_encoded))
        return found

    def delete(self, token: str, *, fields: str | None) -> Values:
        """Cancels a submission still running; a finished one is answered as it is (nothing is erased).
        Always in base64, as Judge0 answers a DELETE."""
        names = requested_fields(fields)
        view = self.executions.cancel(execution_id_of(token))
        return render(execution_values(view), names, base64_encoded=True)

    def _translated(self, submission: SubmissionRequest, *, base64_encoded: bool) -> Translated:
        return to_execute_request(submission, base64_encoded=base64_encoded, registry=self.runs.registry)

    def _checked(self, submission: SubmissionRequest, *, base64_encoded: bool) -> Translated:
        """Translated, and passed by every check of its asynchronous run."""
        translated = self._translated(submission, base64_encoded=base64_encoded)
        try:
            self.executions.checked_input(translated.request)
        except InvalidRequestError as exc:
            raise refusal_of(exc, translated) from exc
        return translated

    def _start(self, translated: Translated, *, caller: str) -> str:
        try:
            view = self.executions.start(translated.request, idempotency_key=None, caller=caller)
        except InvalidRequestError as exc:
            raise refusal_of(exc, translated) from exc
        return view.execution_id

    def _infos(self) -> dict[str, LanguageInfo]:
        return {info.name: info for info in self.runs.languages()}

    def _command(self, language: LanguageSpec, argv: tuple[str, ...]) -> str:
        memory_mb = self.runs.policy.default_memory_limit_mb
        return shlex.join(expand(argv, file_name=language.file_name, memory_mb=memory_mb))


def judge0_name(info: LanguageInfo) -> str:
    """Judge0's naming, with the toolchain this service runs: `C++17 (GCC 12.2.0)`, `Python (3.11.2)`."""
    if info.display_name.endswith(")"):
        return f"{info.display_name[:-1]} {info.version})"
    return f"{info.display_name} ({info.version})"


def config_info(runs: ExecutionService, *, max_queue_size: int) -> ConfigInfo:
    """Judge0's configuration document for what this service does (the synchronous limits: `wait=true`
    must keep to them; `wait=false` may run longer, up to the asynchronous ceiling)."""
    policy = runs.policy
    memory_kb = policy.default_memory_limit_mb * KB_PER_MB
    file_size_kb = policy.max_file_size_bytes // 1024
    return ConfigInfo(
        maintenance_mode=False,
        enable_wait_result=True,
        enable_compiler_options=False,
        allowed_languages_for_compile_options=[],
        enable_command_line_arguments=True,
        enable_submission_delete=True,
        enable_callbacks=False,
        callbacks_max_tries=0,
        callbacks_timeout=0.0,
        enable_additional_files=False,
        max_queue_size=max_queue_size,
        cpu_time_limit=policy.default_timeout_s,
        max_cpu_time_limit=policy.max_timeout_s,
        cpu_extra_time=0.0,
        max_cpu_extra_time=0.0,
        wall_time_limit=policy.default_timeout_s,
        max_wall_time_limit=policy.max_timeout_s,
        memory_limit=memory_kb,
        max_memory_limit=policy.max_memory_limit_mb * KB_PER_MB,
        stack_limit=0,  # not limited apart: the memory limit bounds it
        max_stack_limit=0,
        max_processes_and_or_threads=policy.max_processes,
        max_max_processes_and_or_threads=policy.max_processes,
        enable_per_process_and_thread_time_limit=False,
        allow_enable_per_process_and_thread_time_limit=False,
        enable_per_process_and_thread_memory_limit=False,
        allow_enable_per_process_and_thread_memory_limit=False,
        max_file_size=file_size_kb,
        max_max_file_size=file_size_kb,
        number_of_runs=1,
        max_number_of_runs=1,
        redirect_stderr_to_stdout=False,
        max_extract_size=0,
        enable_batched_submissions=True,
        max_submission_batch_size=MAX_BATCH_SIZE,
        submission_cache_duration=0.0,
        use_docs_as_homepage=False,
        allow_enable_network=False,
        enable_network=False,
    )
