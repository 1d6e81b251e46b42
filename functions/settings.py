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
    # Connections the local HTTP server holds at once (one thread each): beyond, 503 + Retry-After. One
    # client (source address) may hold at most local_max_connections_per_client: beyond, 429 + Retry-After.
    # `make run` listens on loopback, where every client is one address: that cap is then the server's.
    local_max_connections: int = Field(default=256, gt=0)
    local_max_connections_per_client: int = Field(default=128, gt=0)
    local_tmp_size_mb: int = Field(default=64, gt=0)
    local_cgroup_root: str = "code-exec"
    sandbox_python: Path = Path("/usr/bin/python3")
    local_bwrap_path: Path = Path("/usr/bin/bwrap")
    # False runs without per-run cgroups even where the host allows them (rlimits only).
    local_use_cgroups: bool = True
    # Added to the language's sandbox memory and to max_processes for the runner's own process/threads.
    local_runner_memory_mb: int = Field(default=32, ge=0)
    local_runner_pids: int = Field(default=32, ge=1)
    # Bound on what we read of the runner's report (stdout) and its own stderr.
    local_report_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    local_stderr_max_bytes: int = Field(default=64 * 1024, gt=0)
    # The sandbox is killed this long after the task's total_budget_s (the runner should stop first).
    local_kill_grace_s: float = Field(default=2.0, gt=0)
    # When the service runs as root, bubblewrap runs as this unprivileged host uid/gid (via setpriv), so the
    # sandbox's user is never host root in disguise.
    local_sandbox_host_uid: int = Field(default=65534, gt=0)
    local_sandbox_host_gid: int = Field(default=65534, gt=0)
    local_setpriv_path: Path = Path("/usr/bin/setpriv")

    # Kubernetes backend: one Job per run. Auth "auto" = EKS when a cluster name is set, else kubeconfig.
    k8s_auth: Literal["auto", "eks", "kubeconfig", "in_cluster"] = "auto"
    eks_cluster_name: str | None = None
    aws_region: str | None = None  # None: the AWS SDK's own chain (AWS_REGION inside Lambda)
    kubeconfig: Path | None = None  # None: the client's default ($KUBECONFIG, ~/.kube/config)
    kube_context: str | None = None
    k8s_namespace: str = Field(default="runner-dev", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    # A language's image: runner_images[name] (JSON map) if set, else <registry>/<language.image>:<tag>.
    runner_image_registry: str = ""
    runner_image_tag: str = "latest"
    runner_images: dict[str, str] = Field(default_factory=dict)
    k8s_runtime_class_name: str | None = None  # e.g. "gvisor"; None keeps the cluster's default runtime
    k8s_service_account: str = "runner"
    runner_uid: int = Field(default=10001, gt=0)  # the non-root user baked into every runner image
    runner_gid: int = Field(default=10001, gt=0)
    k8s_cpu_request: str = "100m"
    k8s_cpu_limit: str = "500m"
    k8s_memory_request_mb: int = Field(default=128, gt=0)
    k8s_tmp_size_mb: int = Field(default=64, gt=0)
    k8s_job_ttl_s: int = Field(default=300, ge=0)
    k8s_deadline_grace_s: float = Field(default=10.0, ge=0)
    k8s_quota_retry_after_s: int = Field(default=5, gt=0)
    k8s_api_max_attempts: int = Field(default=4, gt=0)
    k8s_api_backoff_s: float = Field(default=0.2, gt=0)
    k8s_api_timeout_s: float = Field(default=10.0, gt=0)

    # Browser origins allowed to call the API (JSON list; ["*"] for any). Empty: no CORS headers.
    cors_origins: list[str] = Field(default_factory=list)

    log_level: str = "INFO"
    service_name: str = "code-exec"
    metrics_namespace: str = "CodeExec"

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
