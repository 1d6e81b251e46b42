"""The runner program: one task document in (stdin or env chunks), one report document out (stdout).

Standard library only. It is the entrypoint of every runner image and what the local backend runs inside
bubblewrap. The documents are described in README.md beside this file and modelled by
functions/core/protocol.py (RunnerTask, RunnerReport).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python3 -I runner.py` leaves the script's folder off sys.path; the sibling modules live there.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from runner_judge import TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE, MemoryRule, judge
from runner_process import Limits, ProcessResult, run_process

PROTOCOL_VERSION = 1
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
VERSION_TIMEOUT_S = 10.0
ADDRESS_SPACE_MARGIN_MB = 16  # headroom for the runtime's own mappings under RLIMIT_AS
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$.-]*$")
BUDGET_USED_UP_NOTE = b"not run: the request's time budget was used up"

Json = dict[str, Any]


def read_task(stdin: bytes, environ: Mapping[str, str]) -> Json:
    """From env chunks when RUNNER_TASK_CHUNKS is set (a pod), else from stdin (a local pipe)."""
    chunk_count = environ.get("RUNNER_TASK_CHUNKS")
    if chunk_count is not None:
        encoded = "".join(environ[f"RUNNER_TASK_{index}"] for index in range(int(chunk_count)))
        stdin = base64.b64decode(encoded, validate=True)
    task = json.loads(stdin)
    if not isinstance(task, dict):
        raise TypeError("the task document must be a JSON object")
    return task


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def child_env(work_dir: str, language: Json) -> dict[str, str]:
    """A fresh environment: never the runner's own, which carries the task and whatever the host had."""
    env = {"PATH": CHILD_PATH, "HOME": work_dir, "LANG": "C.UTF-8", "TMPDIR": work_dir}
    env.update(language.get("env") or {})
    return env


def source_file_name(language: Json, source: bytes) -> str:
    """Java wants the file named after its public class: the pattern's first group names the file."""
    file_name: str = language["file_name"]
    pattern = language.get("source_name_pattern")
    if not pattern:
        return file_name
    match = re.search(pattern, source.decode("utf-8", errors="replace"))
    if match is None or not SAFE_FILE_NAME.match(match.group(1)):
        return file_name
    return match.group(1) + Path(file_name).suffix


def expand(argv: Sequence[str], *, file_name: str, memory_mb: int) -> list[str]:
    values = {"file": file_name, "name": Path(file_name).stem, "memory_mb": str(memory_mb)}
    return [part.format_map(values) for part in argv]


class Budget:
    """The request's wall-clock budget, compile and every case included."""

    def __init__(self, total_s: float) -> None:
        self.deadline = time.monotonic() + total_s

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()


def detect_version(language: Json, env: Mapping[str, str], cwd: str, timeout_s: float) -> str:
    if timeout_s <= 0:
        return ""
    try:
        completed = subprocess.run(
            list(language["version_command"]),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (completed.stdout + b"\n" + completed.stderr).decode("utf-8", errors="replace")
    match = re.search(language["version_pattern"], text)
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
        source = base64.b64decode(task["source_b64"], validate=True)
        self.file_name = source_file_name(self.language, source)
        (Path(work_dir) / self.file_name).write_bytes(source)

    def report(self) -> Json:
        report: Json = {
            "version": PROTOCOL_VERSION,
            "language_version": self.language_version(),
            "compile": None,
            "cases": [],
            "internal_error": None,
        }
        if self.language.get("compile"):
            report["compile"] = self.compile()
            if not report["compile"]["succeeded"]:
                return report
        report["cases"] = [self.run_case(case) for case in self.task["cases"]]
        return report

    def language_version(self) -> str:
        timeout_s = min(VERSION_TIMEOUT_S, self.budget.remaining_s())
        return detect_version(self.language, self.env, self.work_dir, timeout_s)

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
        stdin = base64.b64decode(case.get("stdin_b64") or "", validate=True)
        result = run_process(
            argv,
            cwd=self.work_dir,
            env=self.env,
            stdin=stdin,
            limits=limits,
            output_limit_bytes=int(self.limits["output_limit_bytes"]),
        )
        expected_b64 = case.get("expected_output_b64")
        expected = None if expected_b64 is None else base64.b64decode(expected_b64, validate=True)
        return case_report(result, rule, expected, timeout_s)


def case_report(result: ProcessResult, rule: MemoryRule, expected: bytes | None, timeout_s: float) -> Json:
    judgement = judge(result, rule, expected)
    stderr = bytes(result.stderr.data)
    if judgement.verdict == TIME_LIMIT_EXCEEDED:
        stderr += f"\nTime limit exceeded: the program was killed after {timeout_s:g} s\n".encode()
    return {
        "verdict": judgement.verdict,
        "exit_code": judgement.exit_code,
        "signal": judgement.signal_name,
        "stdout_b64": b64(bytes(result.stdout.data)),
        "stderr_b64": b64(stderr),
        "stdout_truncated": result.stdout.truncated,
        "stderr_truncated": result.stderr.truncated,
        "wall_time_s": round(result.wall_time_s, 4),
        "cpu_time_s": round(result.cpu_time_s, 4),
        "memory_kb": result.max_rss_kb,
    }


def not_run_case() -> Json:
    return {
        "verdict": TIME_LIMIT_EXCEEDED,
        "exit_code": TIMEOUT_EXIT_CODE,
        "signal": None,
        "stdout_b64": "",
        "stderr_b64": b64(BUDGET_USED_UP_NOTE),
        "stdout_truncated": False,
        "stderr_truncated": False,
        "wall_time_s": 0.0,
        "cpu_time_s": 0.0,
        "memory_kb": 0,
    }


def own_rss_kb() -> int:
    """A forked child starts with the runner's resident pages, so its ru_maxrss never reads below this."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def error_report(message: str) -> Json:
    return {
        "version": PROTOCOL_VERSION,
        "language_version": "",
        "compile": None,
        "cases": [],
        "internal_error": message,
    }


def execute(stdin: bytes, environ: Mapping[str, str]) -> Json:
    """Never raises: anything unexpected becomes a report with internal_error."""
    try:
        task = read_task(stdin, environ)
    except (ValueError, TypeError, KeyError) as exc:
        return error_report(f"the runner could not read its task: {exc}")
    work_dir = tempfile.mkdtemp(prefix="run-")
    try:
        return Run(task, work_dir).report()
    except Exception as exc:  # noqa: BLE001 - the report is the only channel back; it must always be written
        return error_report(f"the runner failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def main() -> int:
    stdin = b"" if "RUNNER_TASK_CHUNKS" in os.environ else sys.stdin.buffer.read()
    report = execute(stdin, os.environ)
    sys.stdout.write(json.dumps(report, separators=(",", ":")))
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
