"""HTTP request and response models; the same JSON over API Gateway and locally."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from functions.core.verdicts import Verdict


class Encoding(StrEnum):
    BASE64 = "base64"
    TEXT = "text"


def _json_number(value: object) -> object:
    """A JSON number only: lax validation would also read "64" or true as one (JSON Schema would not)."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("number_type", "Input should be a number, not a string or a boolean")
    return value


# An integer in JSON Schema's sense: 64 and 64.0 are one, 64.5, "64" and true are not.
JsonInteger = Annotated[int, BeforeValidator(_json_number)]


class TestCaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stdin: str = ""
    expected_output: str | None = None


class ExecuteRequest(BaseModel):
    """Body of POST /execute. Limits are optional: absent means the configured default."""

    model_config = ConfigDict(extra="forbid")

    language: str = Field(
        min_length=1,
        max_length=32,
        description="A language name or alias from GET /languages (case-insensitive)",
    )
    code: str = Field(description="Source code: base64 of UTF-8 unless encoding is text")
    stdin: str = Field(default="", description="Standard input, encoded like code")
    # Strict: a number, not "5" or true.
    timeout: float | None = Field(
        default=None,
        gt=0,
        strict=True,
        allow_inf_nan=False,
        description="Wall-clock limit of the program, seconds",
    )
    encoding: Encoding = Encoding.BASE64
    memory_limit_mb: JsonInteger | None = Field(default=None, gt=0)
    args: list[str] = Field(default_factory=list, description="Command-line arguments of the program")
    merge_stderr: bool = Field(
        default=False,
        strict=True,
        description="Send the program's stderr into its stdout: one stream, in the order it was written, "
        "compared with expected_output and answered as stdout (stderr is then empty)",
    )
    test_cases: list[TestCaseRequest] | None = Field(default=None, min_length=1)


class TruncationFlags(BaseModel):
    stdout: bool = False
    stderr: bool = False


class TestCaseResult(BaseModel):
    verdict: Verdict
    stdout: str
    stderr: str
    exit_code: int | None
    signal: str | None = None
    execution_time: float
    cpu_time: float
    memory_kb: int
    truncated: TruncationFlags = Field(default_factory=TruncationFlags)


class ExecuteResponse(BaseModel):
    """A superset of the basic response: clients that read only status/stdout/stderr/exit_code keep working."""

    status: Literal["success", "failed"]
    stdout: str
    stderr: str
    execution_time: float
    exit_code: int | None
    verdict: Verdict
    compile_output: str = ""
    compile_cached: bool = False
    signal: str | None = None
    memory_kb: int = 0
    cpu_time: float = 0.0
    truncated: TruncationFlags = Field(default_factory=TruncationFlags)
    execution_id: str
    language: str
    language_version: str = ""
    test_results: list[TestCaseResult] | None = None


class LanguageInfo(BaseModel):
    name: str
    display_name: str
    aliases: list[str]
    version: str = Field(description="The toolchain's own version where the backend measures it")
    available: bool = Field(description="False when this server has no toolchain for the language")
    compiled: bool
    file_name: str


class HealthResponse(BaseModel):
    status: Literal["healthy"] = "healthy"
    backend: str


class ErrorResponse(BaseModel):
    error: str
    message: str
    execution_id: str | None = None
