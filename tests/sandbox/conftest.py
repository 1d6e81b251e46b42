"""Sandbox suite fixtures: the runner program in containers as a pod runs it (tests/cluster/containers.py).

A task goes through the Job builder's own split (`phase_tasks`, `task_env`): a compiled language gets a
`compile` container, then a `runner` container, sharing the box; the runner is PID 1 of each, the real
toolchains of this host are the image. Each container's report must pass the service's own checks
(`parse_report`); the two are then merged as the backend merges them.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.backends.kubernetes.constants import (
    BOX_MOUNT_PATH,
    COMPILE_CONTAINER,
    COMPILE_PHASE,
    PHASE_ENV,
    RUN_PHASE,
    RUNNER_CONTAINER,
    STATE_MOUNT_PATH,
    TMP_MOUNT_PATH,
)
from functions.backends.kubernetes.job_builder import JobTemplate, phase_tasks
from functions.backends.kubernetes.pod_results import expectations_of
from functions.backends.kubernetes.pod_state import OOM_KILLED, ContainerEnd
from functions.backends.kubernetes.report import ContainerEvidence, PodEvidence, assemble_report
from functions.backends.kubernetes.task_env import task_env
from functions.backends.local.boxes import make_private_dir
from functions.core.judging import Judgement, judge_case
from functions.core.languages import LanguageSpec, load_registry
from functions.core.output_digest import normalized_sha256
from functions.core.protocol import RunnerReport, RunnerTask, TaskCase, TaskLimits
from functions.core.report_checks import ReportExpectations, parse_report
from functions.core.spec import judging_plan
from functions.core.steps import compile_step, run_step, source_file_name
from functions.settings import Settings
from tests.cluster.containers import RUNTIME_PIDS, ContainerOutcome, ContainerRuntime, ContainerSpec, Mount

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNERS_DIR = REPO_ROOT / "runners"
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
RUNNER_DEADLINE_S = 60.0  # a hung runner fails the test instead of hanging the suite
RUNNER_OVERHEAD_MB = JobTemplate(namespace="unit").runner_overhead_mb
RUNNER_COMMAND = ("python3", "/opt/runner/runner.py")


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def language(name: str) -> LanguageSpec:
    return load_registry(RUNNERS_DIR).get(name)


def make_task(
    language_name: str,
    source: str,
    *,
    cases: Sequence[TaskCase] | None = None,
    args: Sequence[str] = (),
    timeout_s: float = 5.0,
    compile_timeout_s: float = 30.0,
    total_budget_s: float = 40.0,
    memory_limit_mb: int = 256,
    output_limit_bytes: int = 64 * 1024,
    max_file_size_bytes: int = 16 * 1024 * 1024,
) -> RunnerTask:
    """A task as the core resolves it (functions/core/steps.py), with the limits a test chooses."""
    spec = language(language_name)
    file_name = source_file_name(spec, source.encode())
    return RunnerTask(
        execution_id=f"unit-{uuid.uuid4().hex[:8]}",
        language=spec,
        source_file_name=file_name,
        source_b64=b64(source),
        compile=compile_step(
            spec, file_name=file_name, memory_limit_mb=memory_limit_mb, timeout_s=compile_timeout_s
        ),
        run=run_step(
            spec, file_name=file_name, memory_limit_mb=memory_limit_mb, timeout_s=timeout_s, args=tuple(args)
        ),
        env=dict(spec.env),
        cases=tuple(cases or (TaskCase(),)),
        limits=TaskLimits(
            total_budget_s=total_budget_s,
            output_limit_bytes=output_limit_bytes,
            max_processes=64,
            max_file_size_bytes=max_file_size_bytes,
        ),
    )


@dataclass(frozen=True)
class ContainerRun:
    outcome: ContainerOutcome
    raw: dict[str, Any] | None  # the report as written; None when the container was killed for memory

    @property
    def report(self) -> RunnerReport:
        assert self.raw is not None, "the container was killed for memory: it wrote no report"
        return RunnerReport.model_validate(self.raw)


@dataclass(frozen=True)
class PodRun:
    task: RunnerTask
    containers: list[ContainerRun]  # compile (if any), then runner (if the compile succeeded)

    @property
    def report(self) -> RunnerReport:
        """The containers' logs and ends as one report, assembled by the backend's own code."""
        compile_run = self.containers[0] if self.task.compile is not None else None
        runner_run = self.containers[-1] if len(self.containers) > (compile_run is not None) else None
        compile_step = self.task.compile or self.task.run
        return assemble_report(
            PodEvidence(
                execution_id=self.task.execution_id,
                expectations=expectations_of(self.task),
                compile=None
                if compile_run is None
                else _facts(COMPILE_CONTAINER, compile_run, compile_step.memory_mb),
                runner=_facts(RUNNER_CONTAINER, runner_run, self.task.run.memory_mb),
                out_of_time=False,
            )
        )


def _facts(name: str, run: ContainerRun | None, memory_mb: int) -> ContainerEvidence:
    if run is None:  # never started: the compile container failed
        return ContainerEvidence(name=name, end=None, log=None, memory_limit_mb=memory_mb)
    outcome = run.outcome
    end = ContainerEnd(
        exit_code=outcome.exit_code,
        reason=OOM_KILLED if outcome.oom_killed else None,
        wall_time_s=outcome.finished_at_s - outcome.started_at_s,
    )
    return ContainerEvidence(name=name, end=end, log=outcome.log, memory_limit_mb=memory_mb)


RunPod = Callable[..., PodRun]


@pytest.fixture(scope="session")
def container_runtime() -> ContainerRuntime:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    try:
        return ContainerRuntime.from_settings(Settings())
    except RuntimeError as exc:
        pytest.skip(f"no container runtime here: {exc}")


@pytest.fixture
def run_pod(container_runtime: ContainerRuntime) -> Iterator[RunPod]:
    """`run_pod(task, env=..., runtime=...)`: the task's containers in order, as the node agent runs a pod."""
    volumes = make_private_dir(Settings().data_dir / "unit-pods" / uuid.uuid4().hex, 0o711)

    def run(
        task: RunnerTask,
        *,
        env: Mapping[str, str] | None = None,
        runtime: ContainerRuntime = container_runtime,
    ) -> PodRun:
        for name in ("box", "tmp", "state"):
            make_private_dir(volumes / name, 0o777)
        compile_task, run_task = phase_tasks(task)
        phases = [(COMPILE_PHASE, compile_task)] if compile_task is not None else []
        phases.append((RUN_PHASE, run_task))
        lease = runtime.host.uids.lease()
        containers: list[ContainerRun] = []
        try:
            for phase, phase_task in phases:
                container = _run_container(runtime, lease, volumes, phase, phase_task, env)
                containers.append(container)
                if container.outcome.exit_code != 0:
                    break
        finally:
            lease.release()
        return PodRun(task, containers)

    yield run
    shutil.rmtree(volumes, ignore_errors=True)


def _run_container(  # noqa: PLR0917 - one container of the pod
    runtime: ContainerRuntime,
    lease: Any,
    volumes: Path,
    phase: str,
    task: RunnerTask,
    env: Mapping[str, str] | None,
) -> ContainerRun:
    compiled_run = phase == RUN_PHASE and task.compile is not None
    step = task.compile if phase == COMPILE_PHASE and task.compile is not None else task.run
    mounts = (
        Mount(volumes / "box", BOX_MOUNT_PATH, read_only=compiled_run),
        Mount(volumes / "tmp", TMP_MOUNT_PATH),
        Mount(volumes / "state", STATE_MOUNT_PATH, read_only=phase == RUN_PHASE),
    )
    chunks = {var.name: var.value or "" for var in task_env(task)}
    spec = ContainerSpec(
        command=RUNNER_COMMAND,
        env={PHASE_ENV: phase, **chunks, **(env or {})},
        mounts=mounts,
        memory_limit_mb=step.memory_mb + RUNNER_OVERHEAD_MB,
        max_pids=task.limits.max_processes + RUNTIME_PIDS,
    )
    outcome = runtime.run(spec, lease, timeout_s=RUNNER_DEADLINE_S, cancel=threading.Event())
    assert not outcome.stopped, f"the {phase} container did not end within {RUNNER_DEADLINE_S} s"
    if outcome.oom_killed:
        return ContainerRun(outcome, None)
    text = outcome.log.decode("utf-8", errors="replace")
    lines = text.splitlines()
    assert len(lines) == 1, f"the {phase} container wrote more than one line: {text[:2000]}"
    expectations = ReportExpectations(
        case_count=0 if phase == COMPILE_PHASE else len(task.cases),
        compiled=phase == COMPILE_PHASE,
        output_limit_bytes=task.limits.output_limit_bytes,
    )
    parse_report(outcome.log, expectations)  # what the service accepts, or ReportRejectedError
    return ContainerRun(outcome, json.loads(lines[0]))


@pytest.fixture
def run_task(run_pod: RunPod) -> Callable[[RunnerTask], RunnerReport]:
    """The merged report of one task's pod."""
    return lambda task: run_pod(task).report


def judged(task: RunnerTask, report: RunnerReport, expected: Sequence[str | None] = ()) -> list[Judgement]:
    """The core's judgement of each case of `report` (`expected`: each case's expected output, if any)."""
    outputs = list(expected) or [None] * len(task.cases)
    digests = tuple(None if output is None else normalized_sha256(output.encode()) for output in outputs)
    plan = judging_plan(task, digests, include_test_results=True)
    return [judge_case(case, plan, digest) for case, digest in zip(report.cases, digests, strict=True)]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything in this folder needs bubblewrap, cgroups and the real toolchains."""
    for item in items:
        if "tests/sandbox/" in str(item.path):
            item.add_marker(pytest.mark.sandbox)
