"""Compile and run one task in its work dir: the version probe, the compile step and every case.

Standard library only: part of the runner program that runs inside every sandbox.
"""

# pathlib costs ~2 ms of start-up per request; os and os.path do the same job here.
# ruff: noqa: PTH118, PTH123

from __future__ import annotations

import os
import re
import time

from runner_documents import PROTOCOL_VERSION, b64, b64decode, case_report, not_run_case
from runner_judge import TIMEOUT_EXIT_CODE, MemoryRule
from runner_process import run_process, start_process
from runner_pump import DRAIN_GRACE_S
from runner_spawn import Limits
from runner_workdir import child_env, expand, source_file_name

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from runner_pump import Pump

    Json = dict[str, Any]

VERSION_TIMEOUT_S = 10.0
ADDRESS_SPACE_MARGIN_MB = 16  # headroom for the runtime's own mappings under RLIMIT_AS
VERSION_OUTPUT_LIMIT_BYTES = 64 * 1024


class Budget:
    """The request's wall-clock budget, compile and every case included."""

    def __init__(self, total_s: float) -> None:
        self.deadline = time.monotonic() + total_s

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


class VersionProbe:
    """`language.version_command` through `language.version_pattern`; "" when that fails or times out.

    Started, then collected with `result()`: a compiled language's probe runs while it compiles, never
    while a test case runs (it would disturb the measured program).
    """

    def __init__(self, language: Json, env: Mapping[str, str], cwd: str, timeout_s: float) -> None:
        self.pattern: str = language["version_pattern"]
        self.pump: Pump | None = None
        command = list(language["version_command"])
        if timeout_s <= 0:
            return
        try:
            self.pump = start_process(
                command,
                cwd=cwd,
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


class Run:
    """One task in one fresh work dir."""

    def __init__(self, task: Json, work_dir: str) -> None:
        self.task = task
        self.language: Json = task["language"]
        self.limits: Json = task["limits"]
        self.work_dir = work_dir
        self.env = child_env(work_dir, self.language)
        self.budget = Budget(float(self.limits["total_budget_s"]))
        source = b64decode(task["source_b64"])
        self.file_name = source_file_name(self.language, source)
        with open(os.path.join(work_dir, self.file_name), "wb") as file:
            file.write(source)

    def report(self) -> Json:
        report: Json = {
            "version": PROTOCOL_VERSION,
            "language_version": "",
            "compile": None,
            "cases": [],
            "internal_error": None,
        }
        probe = self.version_probe()
        if not self.language.get("compile"):
            report["language_version"] = probe.result()
        else:
            try:
                report["compile"] = self.compile()
            finally:
                report["language_version"] = probe.result()
            if not report["compile"]["succeeded"]:
                return report
        report["cases"] = [self.run_case(case) for case in self.task["cases"]]
        return report

    def version_probe(self) -> VersionProbe:
        timeout_s = min(VERSION_TIMEOUT_S, self.budget.remaining_s())
        return VersionProbe(self.language, self.env, self.work_dir, timeout_s)

    def _argv(self, key: str) -> list[str]:
        memory_mb = int(self.limits["memory_limit_mb"])
        return expand(self.language[key], file_name=self.file_name, memory_mb=memory_mb)

    def compile(self) -> Json:
        timeout_s = min(float(self.limits["compile_timeout_s"]), self.budget.remaining_s())
        compile_mb = int(self.language.get("compile_memory_mb") or 0)
        address_space = compile_mb * 1024 * 1024 if self.language.get("limit_address_space") else None
        limits = Limits(
            timeout_s=max(timeout_s, 0.0),
            file_size_bytes=int(self.limits["max_file_size_bytes"]),
            max_processes=int(self.limits["max_processes"]),
            address_space_bytes=address_space or None,
        )
        result = run_process(
            self._argv("compile"),
            cwd=self.work_dir,
            env=self.env,
            stdin=b"",
            limits=limits,
            output_limit_bytes=int(self.limits["output_limit_bytes"]),
            merge_stderr=True,
        )
        output = bytes(result.stdout.data)
        if result.timed_out:
            output += f"\nCompilation timed out after {timeout_s:g} s".encode()
        exit_code = result.exit_code if result.signal_number is None else 128 + result.signal_number
        return {
            "succeeded": result.exit_code == 0 and not result.timed_out,
            "exit_code": TIMEOUT_EXIT_CODE if result.timed_out else exit_code,
            "output_b64": b64(output),
            "wall_time_s": round(result.wall_time_s, 4),
            "timed_out": result.timed_out,
        }

    def run_case(self, case: Json) -> Json:
        timeout_s = min(float(self.limits["timeout_s"]), self.budget.remaining_s())
        if timeout_s <= 0:
            return not_run_case()
        memory_mb = int(self.limits["memory_limit_mb"])
        overhead_mb = int(self.language.get("runtime_overhead_mb") or 0)
        address_space = None
        if self.language.get("limit_address_space"):
            address_space = (memory_mb + overhead_mb + ADDRESS_SPACE_MARGIN_MB) * 1024 * 1024
        limits = Limits(
            timeout_s=timeout_s,
            file_size_bytes=int(self.limits["max_file_size_bytes"]),
            max_processes=int(self.limits["max_processes"]),
            address_space_bytes=address_space,
        )
        rule = MemoryRule(
            limit_kb=(memory_mb + overhead_mb) * 1024,
            floor_kb=own_rss_kb(),
            error_patterns=tuple(self.language.get("memory_error_patterns") or ()),
        )
        argv = self._argv("run") + [str(arg) for arg in self.task.get("args") or ()]
        stdin = b64decode(case.get("stdin_b64") or "")
        result = run_process(
            argv,
            cwd=self.work_dir,
            env=self.env,
            stdin=stdin,
            limits=limits,
            output_limit_bytes=int(self.limits["output_limit_bytes"]),
        )
        expected_b64 = case.get("expected_output_b64")
        expected = None if expected_b64 is None else b64decode(expected_b64)
        return case_report(result, rule, expected, timeout_s)


def own_rss_kb() -> int:
    """A forked child starts with the runner's resident pages, so its ru_maxrss never reads below this."""
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024
