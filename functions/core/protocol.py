"""The runner contract (DESIGN section 3): the task document in, the report document out.

The same bytes travel over a local pipe and through a pod log. The runner itself is standard-library
Python (`runners/runner/runner.py`) and reads these documents as plain JSON.
"""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field

from functions.core.languages import LanguageSpec
from functions.core.verdicts import Verdict

PROTOCOL_VERSION = 1


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class TaskLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(gt=0)
    compile_timeout_s: float = Field(gt=0)
    total_budget_s: float = Field(gt=0)
    memory_limit_mb: int = Field(gt=0)
    output_limit_bytes: int = Field(gt=0)
    max_processes: int = Field(gt=0)
    max_file_size_bytes: int = Field(gt=0)


class TaskCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stdin_b64: str = ""
    expected_output_b64: str | None = None


class RunnerTask(BaseModel):
    """Everything the runner needs; nothing about the service (no credentials, no settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = PROTOCOL_VERSION
    execution_id: str
    language: LanguageSpec
    source_b64: str
    cases: tuple[TaskCase, ...] = Field(min_length=1)
    args: tuple[str, ...] = ()
    limits: TaskLimits


class CompileReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    succeeded: bool
    exit_code: int | None
    output_b64: str = ""
    wall_time_s: float = 0.0
    timed_out: bool = False


class CaseReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    verdict: Verdict
    exit_code: int | None
    signal: str | None = None
    stdout_b64: str = ""
    stderr_b64: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_time_s: float = 0.0
    cpu_time_s: float = 0.0
    memory_kb: int = 0


class RunnerReport(BaseModel):
    """The one JSON document the runner writes to its stdout."""

    model_config = ConfigDict(extra="ignore")

    version: int = PROTOCOL_VERSION
    language_version: str = ""
    compile: CompileReport | None = None
    cases: list[CaseReport] = Field(default_factory=list)
    internal_error: str | None = None
