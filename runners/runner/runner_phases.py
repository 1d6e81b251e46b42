"""The two phases of a pod: `compile` (an init container) and `run` (the main container, every case).

Standard library only: part of the runner program. Each step's figures cover all of its processes: CPU time
is the RUSAGE_CHILDREN delta once every process of the step is reaped, peak memory the container cgroup's
when this reader can reset it (else the largest ru_maxrss reaped), and `oom_killed` is set only when the
container's OOM-kill counter moved during the step.
"""

# pathlib costs ~2 ms of start-up per request; os and os.path do the same job here.
# ruff: noqa: PTH118, PTH123

from __future__ import annotations

import os
import re
import resource
import time

from runner_cgroup import ContainerMemory
from runner_documents import b64decode, not_run, process, report
from runner_guard import stop_everything, sweep
from runner_output import Capture
from runner_process import start_process
from runner_pump import DRAIN_GRACE_S
from runner_spawn import Limits
from runner_workdir import PROGRAM_DIR, SCRATCH_DIR, SCRATCH_DIRS, child_env, empty_dir, write_new_file

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

    from runner_pump import Pump
    from runner_result import ProcessResult

    Json = dict[str, Any]

VERSION_TIMEOUT_S = 3.0
VERSION_OUTPUT_LIMIT_BYTES = 4096
# Shared by the two containers of a compiled language: when the task's time budget began (the compile
# phase writes it once nothing of the compile step is left; the run phase sees it read-only).
STATE_DIR = "/run/code-exec"
BUDGET_FILE = "budget-started"
SOURCE_MODE = 0o444


class Budget:
    """The task's wall-clock budget (compile and every case), on the monotonic clock."""

    def __init__(self, total_s: float, started_epoch_s: float) -> None:
        self.deadline = time.monotonic() + total_s - max(0.0, time.time() - started_epoch_s)

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


class VersionProbe:
    """`language.version_command` through `language.version_pattern`; "" when that fails or times out.

    Started, then collected with `result()`: a compiled language's probe runs while it compiles, an
    interpreted one's before the first case, never while a case runs (it would disturb the measurement).
    """

    def __init__(self, language: Json, env: dict[str, str], timeout_s: float) -> None:
        self.pattern: str = language["version_pattern"]
        self.pump: Pump | None = None
        if timeout_s <= 0:
            return
        try:
            self.pump = start_process(
                list(language["version_command"]),
                cwd=SCRATCH_DIR,
                env=env,
                stdin=b"",
                timeout_s=timeout_s,
                rlimits=(),
                output_limit_bytes=VERSION_OUTPUT_LIMIT_BYTES,
            )
        except OSError:
            return

    def result(self) -> str:
        if self.pump is None:
            return ""
        if self.pump.exited_already():
            # It finished while the compiler ran: its deadline passing since then is no timeout.
            self.pump.deadline = max(self.pump.deadline, time.monotonic() + DRAIN_GRACE_S)
        try:
            completed = self.pump.finish()
        except OSError:
            return ""
        if completed.timed_out:
            return ""
        output = bytes(completed.stdout.data) + b"\n" + bytes(completed.stderr.data)
        match = re.search(self.pattern, output.decode("utf-8", errors="replace"))
        return match.group(1) if match else ""


class Measure:
    """Figures of one step over all of its processes, from just before it starts."""

    def __init__(self, memory: ContainerMemory) -> None:
        self.memory = memory
        self.oom_kills = memory.oom_kills()
        self.cgroup_peak = memory.reset_peak()
        self.cpu = _children_cpu_s()

    def evidence(self, result: ProcessResult, reaped_max_rss_kb: int) -> Json:
        peak_kb = self.memory.peak_kb() if self.cgroup_peak else None
        oom_kills = self.memory.oom_kills()
        return process(
            result,
            cpu_time_s=_children_cpu_s() - self.cpu,
            memory_kb=peak_kb if peak_kb is not None else max(result.max_rss_kb, reaped_max_rss_kb),
            oom_killed=self.oom_kills is not None and oom_kills is not None and oom_kills > self.oom_kills,
        )


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Phase:
    def __init__(self, task: Json, started_epoch_s: float) -> None:
        self.task = task
        self.started_epoch_s = started_epoch_s
        self.language: Json = task["language"]
        self.limits: Json = task["limits"]
        self.env = child_env(task.get("env") or {})
        self.budget = Budget(float(self.limits["total_budget_s"]), started_epoch_s)
        self.memory = ContainerMemory()
        for directory in SCRATCH_DIRS:
            empty_dir(directory)

    def _limits(self, step: Json, timeout_s: float) -> Limits:
        address_space_mb = step.get("address_space_mb")
        return Limits(
            timeout_s=timeout_s,
            file_size_bytes=int(self.limits["max_file_size_bytes"]),
            address_space_bytes=None if address_space_mb is None else int(address_space_mb) * 1024 * 1024,
        )

    def _probe(self) -> VersionProbe:
        return VersionProbe(self.language, self.env, min(VERSION_TIMEOUT_S, self.budget.remaining_s()))

    def _write_source(self) -> None:
        empty_dir(PROGRAM_DIR)
        source = b64decode(self.task["source_b64"])
        write_new_file(PROGRAM_DIR, self.task["source_file_name"], source, SOURCE_MODE)


class CompilePhase(Phase):
    """The init container: write the source into /box, compile it there, leave the budget's start."""

    def run(self) -> tuple[Json, bool]:
        """(report, whether the compile step succeeded: the run phase may start)."""
        step: Json = self.task["compile"]
        self._write_source()
        timeout_s = max(min(float(step["timeout_s"]), self.budget.remaining_s()), 0.0)
        probe = self._probe()
        measure = Measure(self.memory)
        try:
            pump = start_process(
                [str(arg) for arg in step["argv"]],
                cwd=PROGRAM_DIR,
                env=self.env,
                stdin=b"",
                timeout_s=timeout_s,
                rlimits=self._limits(step, timeout_s).rlimits(),
                output_limit_bytes=int(self.limits["output_limit_bytes"]),
                merge_stderr=True,
            )
        finally:
            language_version = probe.result()
        result = pump.finish()
        evidence = measure.evidence(result, sweep())
        for directory in SCRATCH_DIRS:
            empty_dir(directory)
        succeeded = result.exit_code == 0 and not result.timed_out
        if succeeded:
            empty_dir(STATE_DIR)  # nothing the compile step left there survives
            write_new_file(STATE_DIR, BUDGET_FILE, repr(self.started_epoch_s).encode(), SOURCE_MODE)
        return report(language_version, evidence, []), succeeded


class RunPhase(Phase):
    """The main container: every case in turn, each from an empty /tmp, nothing of it left afterwards."""

    def run(self) -> Json:
        compiled = self.task.get("compile") is not None
        language_version = ""
        if not compiled:
            self._write_source()
            probe = self._probe()
            language_version = probe.result()
            sweep()
        cases = []
        for case in self.task["cases"]:
            cases.append(self._case(case))
            for directory in SCRATCH_DIRS:
                empty_dir(directory)
            if not compiled:
                self._write_source()  # the program may have changed its own files
        return report(language_version, None, cases)

    def _case(self, case: Json) -> Json:
        step: Json = self.task["run"]
        timeout_s = min(float(step["timeout_s"]), self.budget.remaining_s())
        if timeout_s <= 0:
            return not_run(Capture(1))
        measure = Measure(self.memory)
        result = start_process(
            [str(arg) for arg in step["argv"]],
            cwd=SCRATCH_DIR,
            env=self.env,
            stdin=b64decode(case.get("stdin_b64") or ""),
            timeout_s=timeout_s,
            rlimits=self._limits(step, timeout_s).rlimits(),
            output_limit_bytes=int(self.limits["output_limit_bytes"]),
            merge_stderr=bool(step.get("merge_stderr", False)),
            stop=stop_everything,
        ).finish()
        return measure.evidence(result, sweep())


def budget_started_epoch_s() -> float | None:
    """When the compile phase began, if it left that behind (a compiled language's run phase)."""
    try:
        with open(os.path.join(STATE_DIR, BUDGET_FILE), "rb") as state:
            return float(state.read(64))
    except (OSError, ValueError):
        return None
