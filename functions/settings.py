"""The one place that reads the environment: every `EXEC_*` setting, validated at cold start."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parent
DEFAULT_RUNNERS_DIR = PACKAGE_ROOT.parent / "runners"


class Settings(BaseSettings):
    """Every limit is a default plus a ceiling; requests above a ceiling get a 400."""

    model_config = SettingsConfigDict(env_prefix="EXEC_", frozen=True, extra="ignore")

    backend: Literal["local", "kubernetes"] = "local"
    runners_dir: Path = DEFAULT_RUNNERS_DIR

    default_timeout_s: float = Field(default=10.0, gt=0)
    max_timeout_s: float = Field(default=20.0, gt=0)
    max_async_timeout_s: float = Field(default=900.0, gt=0)
    compile_timeout_s: float = Field(default=30.0, gt=0)
    # Wall-clock budget of one synchronous request, compile and every test case included.
    sync_budget_s: float = Field(default=28.0, gt=0)

    default_memory_limit_mb: int = Field(default=256, gt=0)
    max_memory_limit_mb: int = Field(default=512, gt=0)
    min_memory_limit_mb: int = Field(default=16, gt=0)

    max_code_bytes: int = Field(default=64 * 1024, gt=0)
    max_stdin_bytes: int = Field(default=512 * 1024, gt=0)
    output_limit_bytes: int = Field(default=64 * 1024, gt=0)
    max_test_cases: int = Field(default=64, gt=0)
    max_args: int = Field(default=64, ge=0)
    max_arg_bytes: int = Field(default=4096, gt=0)
    max_processes: int = Field(default=64, gt=0)
    max_file_size_bytes: int = Field(default=16 * 1024 * 1024, gt=0)

    # Local backend.
    local_max_concurrency: int = Field(default=4, gt=0)
    local_queue_wait_s: float = Field(default=2.0, ge=0)
    local_tmp_size_mb: int = Field(default=64, gt=0)
    local_cgroup_root: str = "code-exec"
    sandbox_python: Path = Path("/usr/bin/python3")

    log_level: str = "INFO"
    service_name: str = "code-exec"

    @model_validator(mode="after")
    def _defaults_within_ceilings(self) -> Settings:
        if self.default_timeout_s > self.max_timeout_s:
            raise ValueError("EXEC_DEFAULT_TIMEOUT_S must not exceed EXEC_MAX_TIMEOUT_S")
        if not self.min_memory_limit_mb <= self.default_memory_limit_mb <= self.max_memory_limit_mb:
            raise ValueError("EXEC_DEFAULT_MEMORY_LIMIT_MB must lie between the minimum and the maximum")
        return self


@cache
def get_settings() -> Settings:
    return Settings()
