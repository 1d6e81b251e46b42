"""Judge0 CE 1.13.1's documents, with its field names and units (memory in KB, times in seconds).

Numbers may come as JSON numbers or numeric strings, as Judge0 (Rails) reads them; booleans are not
numbers. What this service does not do is refused, never ignored: the fields are declared so that a value
asking for it gets a 422 that says why (`functions.core.judge0.submissions`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

# The Judge0 version this API answers as (clients pick their language-id map by it).
JUDGE0_VERSION = "1.13.1"
MAX_BATCH_SIZE = 20  # Judge0's default max_submission_batch_size
MAX_COMMAND_LINE_CHARS = 512  # Judge0's limit on command_line_arguments and compiler_options


# A number as Judge0 reads one: 5, 5.0 or "5" (`SubmissionRequest` refuses true and false).
Judge0Number = Annotated[float, AllowInfNan(allow_inf_nan=False)]
Judge0Integer = int

_NOT_SUPPORTED = "Not supported by this service: refused (422) unless absent or null"


class SubmissionRequest(BaseModel):
    """A submission. `source_code`, `stdin` and `expected_output` are base64 with `base64_encoded=true`."""

    model_config = ConfigDict(extra="forbid")

    source_code: str = Field(description="The program")
    language_id: Judge0Integer = Field(description="An id from GET /judge0/languages")
    stdin: str | None = None
    expected_output: str | None = Field(
        default=None,
        description="Compared with stdout, trailing whitespace of each line and trailing empty lines "
        "ignored: Accepted or Wrong Answer",
    )
    cpu_time_limit: Judge0Number | None = Field(
        default=None,
        gt=0,
        description="Seconds. This service bounds wall-clock time: the smaller of "
        "cpu_time_limit and wall_time_limit applies",
    )
    wall_time_limit: Judge0Number | None = Field(default=None, gt=0, description="Seconds")
    memory_limit: Judge0Number | None = Field(
        default=None, gt=0, description="KB (rounded up to whole MiB): every process of the program together"
    )
    command_line_arguments: str | None = Field(
        default=None,
        max_length=MAX_COMMAND_LINE_CHARS,
        description="Split into words like a shell does (quotes group), never expanded",
    )
    redirect_stderr_to_stdout: bool | None = None
    number_of_runs: Judge0Integer | None = Field(default=None, description="1 only")
    callback_url: str | None = Field(
        default=None, description="Callbacks are not supported: refused when set"
    )
    compiler_options: str | None = Field(
        default=None, max_length=MAX_COMMAND_LINE_CHARS, description=_NOT_SUPPORTED + " or empty"
    )
    additional_files: str | None = Field(default=None, description=_NOT_SUPPORTED + " or empty")
    cpu_extra_time: Judge0Number | None = Field(default=None, description=_NOT_SUPPORTED + " or 0")
    stack_limit: Judge0Integer | None = Field(default=None, description=_NOT_SUPPORTED)
    max_processes_and_or_threads: Judge0Integer | None = Field(default=None, description=_NOT_SUPPORTED)
    enable_per_process_and_thread_time_limit: bool | None = Field(
        default=None, description=_NOT_SUPPORTED + " or false"
    )
    enable_per_process_and_thread_memory_limit: bool | None = Field(
        default=None, description=_NOT_SUPPORTED + " or false"
    )
    max_file_size: Judge0Integer | None = Field(default=None, description=_NOT_SUPPORTED)
    enable_network: bool | None = Field(default=None, description="Programs never have a network: false only")

    @field_validator(
        "language_id",
        "cpu_time_limit",
        "wall_time_limit",
        "memory_limit",
        "number_of_runs",
        "cpu_extra_time",
        "stack_limit",
        "max_processes_and_or_threads",
        "max_file_size",
        mode="before",
    )
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        if isinstance(value, bool):
            raise PydanticCustomError("number_type", "Input should be a number, not a boolean")
        return value


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    submissions: list[SubmissionRequest] = Field(min_length=1, max_length=MAX_BATCH_SIZE)


class TokenResponse(BaseModel):
    token: str


class StatusEntry(BaseModel):
    id: int
    description: str


class SubmissionView(BaseModel):
    """A submission as answered: only the requested fields are present (`fields`, default the first eight
    below; `*` all of them). Times are decimal strings in seconds, memory an integer in KB."""

    token: str | None = None
    time: str | None = None
    memory: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    compile_output: str | None = None
    message: str | None = None
    status: StatusEntry | None = None
    status_id: int | None = None
    wall_time: str | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    created_at: str | None = None
    finished_at: str | None = None


class BatchView(BaseModel):
    submissions: list[SubmissionView | None]


class About(BaseModel):
    version: str
    homepage: str | None
    source_code: str | None
    maintainer: str | None


class LanguageEntry(BaseModel):
    id: int
    name: str


class LanguageDetail(LanguageEntry):
    is_archived: bool
    source_file: str
    compile_cmd: str | None
    run_cmd: str


class ConfigInfo(BaseModel):
    """GET /config_info: what this service does, in Judge0's configuration terms."""

    maintenance_mode: bool
    enable_wait_result: bool
    enable_compiler_options: bool
    allowed_languages_for_compile_options: list[str]
    enable_command_line_arguments: bool
    enable_submission_delete: bool
    enable_callbacks: bool
    callbacks_max_tries: int
    callbacks_timeout: float
    enable_additional_files: bool
    max_queue_size: int
    cpu_time_limit: float
    max_cpu_time_limit: float
    cpu_extra_time: float
    max_cpu_extra_time: float
    wall_time_limit: float
    max_wall_time_limit: float
    memory_limit: int
    max_memory_limit: int
    stack_limit: int
    max_stack_limit: int
    max_processes_and_or_threads: int
    max_max_processes_and_or_threads: int
    enable_per_process_and_thread_time_limit: bool
    allow_enable_per_process_and_thread_time_limit: bool
    enable_per_process_and_thread_memory_limit: bool
    allow_enable_per_process_and_thread_memory_limit: bool
    max_file_size: int
    max_max_file_size: int
    number_of_runs: int
    max_number_of_runs: int
    redirect_stderr_to_stdout: bool
    max_extract_size: int
    enable_batched_submissions: bool
    max_submission_batch_size: int
    submission_cache_duration: float
    use_docs_as_homepage: bool
    allow_enable_network: bool
    enable_network: bool
