"""The supervisor contract (docs/runner-protocol.md): the task document in, the report of evidence out.

A task carries only what the program may see: its source, each case's stdin, its arguments and limits.
Expected outputs never leave the service. The report carries evidence only — how each process ended, what it
printed (capped, with the normalised digest of everything it printed), its time and memory — never a
verdict: the core judges (functions/core/judging.py). The same documents travel over a pod log (the pod's
runner, runners/runner) and are built in memory by the local sandbox backend, which supervises from outside
its sandboxes.

Reports come from a process that ran next to untrusted code, so every field is bounded and checked here and
in `functions.core.report_checks`; anything malformed becomes `internal_error`, never a verdict.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from functions.core.languages import LanguageSpec

PROTOCOL_VERSION: Literal[2] = 2
# Where the program's files are, in every sandbox (local and pod): its working directory is a fresh /tmp.
PROGRAM_DIR = "/box"
SHA256_HEX = r"^[0-9a-f]{64}$"
MAX_SIGNAL_NUMBER = 64
MAX_LANGUAGE_VERSION_CHARS = 64
MAX_INTERNAL_ERROR_CHARS = 2000


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _valid_base64(text: str) -> str:
    try:
        b64decode(text)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not valid base64") from exc
    return text


Base64Text = Annotated[str, AfterValidator(_valid_base64)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class StepSpec(BaseModel):
    """One command a supervisor runs: the compile step once, or the program once per test case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    argv: tuple[str, ...] = Field(min_length=1)  # searched on PATH; placeholders already expanded
    timeout_s: float = Field(gt=0)  # wall clock, per run of the command
    memory_mb: int = Field(gt=0)  # every process of the step together (cgroup or container limit)
    address_space_mb: int | None = Field(default=None, gt=0)  # RLIMIT_AS per process, where it helps
    # The run step only: the program's stderr is its stdout (the compile step's streams are always merged).
    merge_stderr: bool = False


class TaskLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    total_budget_s: float = Field(gt=0)  # compile and every case together
    output_limit_bytes: int = Field(gt=0)  # kept per stream
    max_processes: int = Field(gt=0)
    max_file_size_bytes: int = Field(gt=0)


class TaskCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stdin_b64: str = ""


class RunnerTask(BaseModel):
    """Everything a supervisor needs, every rule already applied by the core; nothing the program must not
    see and nothing about the service (no credentials, no settings, no expected outputs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = PROTOCOL_VERSION
    execution_id: str
    language: LanguageSpec
    source_file_name: str  # in PROGRAM_DIR
    source_b64: str
    compile: StepSpec | None  # run with PROGRAM_DIR as its working directory, writable
    run: StepSpec  # run with a fresh, empty /tmp as its working directory; PROGRAM_DIR read-only
    env: dict[str, str] = Field(default_factory=dict)  # added to the sandbox's fixed environment
    cases: tuple[TaskCase, ...] = Field(min_length=1)
    limits: TaskLimits


class StreamReport(BaseModel):
    """One output stream: its first bytes, its length, its normalised digest, and its tail when cut."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_b64: Base64Text = ""
    total_bytes: int = Field(default=0, ge=0)
    normalized_sha256: str = Field(pattern=SHA256_HEX)
    tail_b64: Base64Text = ""


class ProcessReport(BaseModel):
    """What one process tree did: the compile step (its merged output in `stdout`) or one test case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exit_code: int | None = Field(ge=0, le=255)  # None: killed by `signal`, or never started
    signal: int | None = Field(default=None, ge=1, le=MAX_SIGNAL_NUMBER)
    timed_out: bool = False  # killed by its supervisor at the time limit
    oom_killed: bool = False  # the kernel's evidence: the cgroup's OOM kill counter, or OOMKilled
    not_run: bool = False  # never started: the request's time budget was used up
    wall_time_s: Seconds = 0.0
    cpu_time_s: Seconds = 0.0
    memory_kb: int = Field(default=0, ge=0)
    stdout: StreamReport
    stderr: StreamReport


class RunnerReport(BaseModel):
    """The evidence of one task. `internal_error` says why the supervisor could not finish it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[2] = PROTOCOL_VERSION
    language_version: str = Field(default="", max_length=MAX_LANGUAGE_VERSION_CHARS)
    compile: ProcessReport | None = None
    compile_cached: bool = False  # the compile step's output came from a cache: its report is the original's
    cases: list[ProcessReport] = Field(default_factory=list)
    internal_error: str | None = Field(default=None, max_length=MAX_INTERNAL_ERROR_CHARS)


def error_report(message: str, *, language_version: str = "") -> RunnerReport:
    return RunnerReport(
        language_version=language_version[:MAX_LANGUAGE_VERSION_CHARS],
        internal_error=message[:MAX_INTERNAL_ERROR_CHARS],
    )
