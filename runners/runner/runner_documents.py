"""The runner's two documents: reading and decoding the task, building the report's parts.

Standard library only (binascii instead of base64, which costs start-up time on every request). The shapes
are README.md's and functions/core/protocol.py's (RunnerTask in, RunnerReport out).
"""

from __future__ import annotations

import binascii
import json

from runner_judge import TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE, judge

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from runner_judge import MemoryRule
    from runner_result import ProcessResult

    Json = dict[str, Any]

PROTOCOL_VERSION = 1
BUDGET_USED_UP_NOTE = b"not run: the request's time budget was used up"


def read_task(stdin: bytes, environ: Mapping[str, str]) -> Json:
    """From env chunks when RUNNER_TASK_CHUNKS is set (a pod), else from stdin (a local pipe)."""
    chunk_count = environ.get("RUNNER_TASK_CHUNKS")
    if chunk_count is not None:
        encoded = "".join(environ[f"RUNNER_TASK_{index}"] for index in range(int(chunk_count)))
        stdin = b64decode(encoded)
    task = json.loads(stdin)
    if not isinstance(task, dict):
        raise TypeError("the task document must be a JSON object")
    return task


def b64(data: bytes) -> str:
    """base64.b64encode(data).decode() (the base64 module is a thin layer over binascii)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64decode(text: str) -> bytes:
    """base64.b64decode(text, validate=True): anything outside the alphabet is an error (a ValueError)."""
    return binascii.a2b_base64(text, strict_mode=True)


def error_report(message: str) -> Json:
    return {
        "version": PROTOCOL_VERSION,
        "language_version": "",
        "compile": None,
        "cases": [],
        "internal_error": message,
    }


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
