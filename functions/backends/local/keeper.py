"""The supervisor of one task, outside every sandbox: compile once, then each test case in a fresh sandbox.

The program never shares a sandbox, a uid or a process tree with what reports on it: this module runs in
the service, starts one sandbox per step, and builds the report from what it observed itself. Test cases do
not share state: each gets a new sandbox with an empty /tmp and the same read-only program files.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from functions.backends.local.boxes import ArtifactError, ArtifactLimits, link_files, make_private_dir
from functions.backends.local.compile_cache import CompileCache, cache_key
from functions.backends.local.reports import NOT_RUN, output_refused
from functions.backends.local.sandbox import Launch, PhaseLimits, Sandbox
from functions.backends.local.versions import VersionCache
from functions.core.errors import DeadlineExceededError
from functions.core.protocol import (
    ProcessReport,
    RunnerReport,
    RunnerTask,
    StepSpec,
    b64decode,
)
from functions.core.report_checks import compile_succeeded


class SandboxSource(Protocol):
    """Where sandboxes come from: started on demand, or ahead of demand (a warm pool)."""

    def acquire(self, *, writable_box: bool) -> Sandbox: ...

    def release(self, sandbox: Sandbox) -> None:
        """After its one run: kill what is left of it now, tear it down when convenient."""


class ExecutionCancelledError(Exception):
    """The caller cancelled the run; whatever was running has been killed."""


@dataclass(frozen=True, slots=True)
class Clock:
    """The task's own budget and the caller's: a step cut by the caller's is a 504, not a verdict."""

    task_deadline_s: float
    caller_deadline_s: float

    def step_timeout_s(self, step_timeout_s: float) -> tuple[float, bool]:
        """(timeout for the next step, whether the caller's deadline is what bounds it)."""
        now_s = time.monotonic()
        natural_s = min(step_timeout_s, self.task_deadline_s - now_s)
        caller_s = self.caller_deadline_s - now_s
        return (caller_s, True) if caller_s < natural_s else (natural_s, False)


@dataclass(frozen=True, slots=True)
class Compiled:
    report: ProcessReport
    artifacts: Path | None  # what the run sandboxes get; None when the compile step failed
    cached: bool = False


class TaskRunner:
    def __init__(
        self,
        sandboxes: SandboxSource,
        versions: VersionCache,
        *,
        scratch_root: Path,
        artifact_limits: ArtifactLimits,
        compile_cache: CompileCache | None = None,
    ) -> None:
        self.sandboxes = sandboxes
        self.versions = versions
        self.scratch_root = scratch_root
        self.artifact_limits = artifact_limits
        self.compile_cache = compile_cache

    def run(
        self, task: RunnerTask, *, budget_s: float, cancel: threading.Event | None = None
    ) -> RunnerReport:
        started_s = time.monotonic()
        clock = Clock(started_s + task.limits.total_budget_s, started_s + budget_s)
        language_version = self.versions.version(task.language)
        with self._scratch() as scratch:
            compiled = None
            if task.compile is not None:
                compiled = self._compiled(task, task.compile, clock, scratch, cancel)
                if compiled.artifacts is None:
                    return RunnerReport(language_version=language_version, compile=compiled.report)
            artifacts = None if compiled is None else compiled.artifacts
            cases = [self._case(task, artifacts, case.stdin_b64, clock, cancel) for case in task.cases]
        return RunnerReport(
            language_version=language_version,
            compile=None if compiled is None else compiled.report,
            compile_cached=compiled is not None and compiled.cached,
            cases=cases,
        )

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        path = self.scratch_root / uuid.uuid4().hex
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def _compiled(
        self, task: RunnerTask, step: StepSpec, clock: Clock, scratch: Path, cancel: threading.Event | None
    ) -> Compiled:
        """From the compile cache, or compiled now (and cached when it succeeded)."""
        key = None
        if self.compile_cache is not None:
            key = cache_key(task, self.versions.toolchain(task.language))
            hit = self.compile_cache.get(key)
            if hit is not None and _own_links(hit.artifacts, scratch):
                return Compiled(hit.report, scratch, cached=True)
        report = self._compile(task, step, clock, scratch, cancel)
        if not compile_succeeded(report):
            return Compiled(report, None)
        if self.compile_cache is not None and key is not None:
            self.compile_cache.put(key, scratch, report)
        return Compiled(report, scratch)

    def _compile(
        self, task: RunnerTask, step: StepSpec, clock: Clock, artifacts: Path, cancel: threading.Event | None
    ) -> ProcessReport:
        sandbox = self.sandboxes.acquire(writable_box=True)
        try:
            sandbox.box.write_file(task.source_file_name, b64decode(task.source_b64), mode=0o644)
            report = self._run_step(sandbox, task, step, clock, cancel, stdin=b"")
            if compile_succeeded(report):
                try:
                    sandbox.box.collect(artifacts, self.artifact_limits)
                except ArtifactError as exc:
                    return output_refused(report, f"the compile step's output was refused: {exc}")
            return report
        finally:
            self.sandboxes.release(sandbox)

    def _case(
        self,
        task: RunnerTask,
        artifacts: Path | None,
        stdin_b64: str,
        clock: Clock,
        cancel: threading.Event | None,
    ) -> ProcessReport:
        timeout_s, _ = clock.step_timeout_s(task.run.timeout_s)
        if timeout_s <= 0:
            return NOT_RUN
        sandbox = self.sandboxes.acquire(writable_box=False)
        try:
            if artifacts is None:
                sandbox.box.write_file(task.source_file_name, b64decode(task.source_b64))
            else:
                link_files(artifacts, sandbox.box.path)
            return self._run_step(sandbox, task, task.run, clock, cancel, stdin=b64decode(stdin_b64))
        finally:
            self.sandboxes.release(sandbox)

    def _run_step(
        self,
        sandbox: Sandbox,
        task: RunnerTask,
        step: StepSpec,
        clock: Clock,
        cancel: threading.Event | None,
        *,
        stdin: bytes,
    ) -> ProcessReport:
        timeout_s, cut_by_caller = clock.step_timeout_s(step.timeout_s)
        limits = PhaseLimits(
            timeout_s=max(timeout_s, 0.001),
            memory_limit_mb=step.memory_mb,
            max_processes=task.limits.max_processes,
            file_size_bytes=task.limits.max_file_size_bytes,
            output_limit_bytes=task.limits.output_limit_bytes,
            address_space_bytes=None
            if step.address_space_mb is None
            else step.address_space_mb * 1024 * 1024,
        )
        report = sandbox.run(
            Launch(step.argv, task.env, step.merge_stderr), limits, stdin=stdin, cancel=cancel
        )
        if cancel is not None and cancel.is_set():
            raise ExecutionCancelledError(f"execution {task.execution_id} was cancelled")
        if report.timed_out and cut_by_caller:
            raise DeadlineExceededError(
                "the run did not finish inside the request's time budget", execution_id=task.execution_id
            )
        return report


def _own_links(entry: Path, scratch: Path) -> bool:
    """This run's own hard links to a cache entry's files, so that evicting the entry cannot pull them from
    under the run; False when another run evicted it between the lookup and now."""
    make_private_dir(scratch, 0o755)
    try:
        link_files(entry, scratch)
    except FileNotFoundError:
        shutil.rmtree(scratch, ignore_errors=True)
        return False
    return True
