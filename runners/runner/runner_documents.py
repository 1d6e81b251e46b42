"""The runner's two documents: reading the task from the environment, writing the report's evidence.

Standard library only (binascii instead of base64, which costs start-up time on every request). The shapes
are functions/core/protocol.py's (RunnerTask in, RunnerReport out) and docs/runner-protocol.md's: evidence
only, never a verdict — the service judges.
"""

from __future__ import annotations

import binascii
import json

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from runner_output import Capture
    from runner_result import ProcessResult

    Json = dict[str, Any]

PROTOCOL_VERSION = 2
CHUNKS_ENV = "RUNNER_TASK_CHUNKS"
CHUNK_ENV_PREFIX = "RUNNER_TASK_"


def read_task(environ: Mapping[str, str]) -> Json:
    """`RUNNER_TASK_0` … `RUNNER_TASK_{N-1}` (N = `RUNNER_TASK_CHUNKS`): together the base64 of the task JSON."""
    count = int(environ[CHUNKS_ENV])
    encoded = "".join(environ[f"{CHUNK_ENV_PREFIX}{index}"] for index in range(count))
    task = json.loads(b64decode(encoded))
    if not isinstance(task, dict):
        raise TypeError("the task document must be a JSON object")
    return task


def b64(data: bytes) -> str:
    """base64.b64encode(data).decode() (the base64 module is a thin layer over binascii)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64decode(text: str) -> bytes:
    """base64.b64decode(text, validate=True): anything outside the alphabet is an error (a ValueError)."""
    return binascii.a2b_base64(text, strict_mode=True)


def report(language_version: str, compile_step: Json | None, cases: list[Json]) -> Json:
    return {
        "version": PROTOCOL_VERSION,
        "language_version": language_version,
        "compile": compile_step,
        "cases": cases,
        "internal_error": None,
    }


def error_report(message: str, language_version: str = "") -> Json:
    return {**report(language_version, None, []), "internal_error": message}


def stream(capture: Capture) -> Json:
    return {
        "data_b64": b64(bytes(capture.data)),
        "total_bytes": capture.total_bytes,
        "normalized_sha256": capture.digest.hexdigest(),
        "tail_b64": b64(capture.tail) if capture.truncated else "",
    }


def process(result: ProcessResult, *, cpu_time_s: float, memory_kb: int, oom_killed: bool) -> Json:
    """The evidence of one step: how its main process ended, and figures over all of its processes."""
    return {
        "exit_code": result.exit_code,
        "signal": result.signal_number,
        "timed_out": result.timed_out,
        "oom_killed": oom_killed,
        "not_run": False,
        "wall_time_s": round(max(result.wall_time_s, 0.0), 6),
        "cpu_time_s": round(max(cpu_time_s, 0.0), 6),
        "memory_kb": max(memory_kb, 0),
        "stdout": stream(result.stdout),
        "stderr": stream(result.stderr),
    }


def not_run(empty: Capture) -> Json:
    """A case that never started: the task's time budget was used up."""
    nothing = stream(empty)
    return {
        "exit_code": None,
        "signal": None,
        "timed_out": False,
        "oom_killed": False,
        "not_run": True,
        "wall_time_s": 0.0,
        "cpu_time_s": 0.0,
        "memory_kb": 0,
        "stdout": nothing,
        "stderr": nothing,
    }
