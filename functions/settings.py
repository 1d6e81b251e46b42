"""The one place that reads the environment: every `EXEC_*` setting, validated at cold start."""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parent
DEFAULT_RUNNERS_DIR = PACKAGE_ROOT.parent / "runners"
DEFAULT_LAUNCHER_PATH = PACKAGE_ROOT.parent / "build" / "sandbox-launch"

# A node taint in kubectl's syntax, `key=value:Effect` or `key:Effect`: runner pods tolerate the taints of
# the nodes dedicated to untrusted code. These settings, the CDK context and the Job builder share it.
TAINT_PATTERN = (
    r"^(?P<key>[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?)"
    r"(=(?P<value>[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?)?"
    r":(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)$"
)


class ServiceSettings(BaseModel):
    """What every part of the service reads: which backend, where the languages and the state are."""

    backend: str = Field(default="local", description="a name of functions/backends/registry.py's table")
    runners_dir: Path = DEFAULT_RUNNERS_DIR
    # Where the service keeps its state: sandbox boxes, uid leases, caches, asynchronous executions. Its path
    # must be traversable by the sandbox uids (bubblewrap binds a box from there as that uid).
    data_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()) / f"code-exec-{os.geteuid()}")

    # Browser origins allowed to call the API (JSON list; ["*"] for any). Empty: no CORS headers.
    cors_origins: list[str] = Field(default_factory=list)

    log_level: str = "INFO"
    service_name: str = "code-exec"
    metrics_namespace: str = "CodeExec"


class LimitSettings(BaseModel):
    """Every limit is a default plus a ceiling; requests above a ceiling get a 400."""

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


class ExecutionsSettings(BaseModel):
    """Asynchronous executions (/executions, the Step Functions workflow).

    With a state machine ARN the executions are that state machine's; without one they run locally, kept in
    SQLite under data_dir.
    """

    state_machine_arn: str | None = None
    # Local executions running at once; the ones beyond wait for a free place, up to async_max_queued
    # executions not yet ended in all (beyond that POST /executions answers 503 + Retry-After).
    async_max_running: int = Field(default=4, gt=0)
    async_max_queued: int = Field(default=100, gt=0)
    # Poll waits: the first, growing by a second every third poll, up to the last (both engines).
    async_poll_initial_s: int = Field(default=1, ge=0)
    async_poll_max_s: int = Field(default=5, ge=0)


class DevServerSettings(BaseModel):
    """The development server of `make run` (functions/devserver)."""

    # Connections the local HTTP server holds at once (one thread each): beyond, 503 + Retry-After. One
    # client (source address) may hold at most local_max_connections_per_client: beyond, 429 + Retry-After.
    # `make run` listens on loopback, where every client is one address: that cap is then the server's.
    local_max_connections: int = Field(default=256, gt=0)
    local_max_connections_per_client: int = Field(default=128, gt=0)


class LocalSandboxSettings(BaseModel):
    """The local backend: bubblewrap sandboxes on this machine (functions/backends/local)."""

    local_max_concurrency: int = Field(default=4, gt=0)
    local_queue_wait_s: float = Field(default=2.0, ge=0)
    local_tmp_size_mb: int = Field(default=64, gt=0)
    local_cgroup_root: str = "code-exec"
    local_bwrap_path: Path = Path("/usr/bin/bwrap")
    # The sandbox's launcher (functions/backends/local/launch.c), built static by `make setup`.
    local_launcher_path: Path = DEFAULT_LAUNCHER_PATH
    # bubblewrap's own processes in each sandbox, on top of the task's memory and process limits.
    local_sandbox_overhead_mb: int = Field(default=8, ge=0)
    local_sandbox_overhead_pids: int = Field(default=4, ge=1)
    # When the service runs as root, every live sandbox runs as its own host uid from this range, so
    # concurrent runs share no per-user kernel state and none is host root in disguise.
    local_sandbox_uid_base: int = Field(default=60000, gt=0)
    local_sandbox_uid_count: int = Field(default=256, gt=0)
    # Where the leases of those uids are kept: one place per host, whatever each instance's data_dir, so two
    # services on one machine (a `make run` beside `make test`) never back two live sandboxes with one uid.
    local_uid_lease_dir: Path = Path("/run/code-exec/uid-leases")
    # Sandboxes started ahead of demand per serving process (each used once); 0 starts every one on demand.
    local_warm_pool_size: int = Field(default=2, ge=0)
    local_warm_idle_s: float = Field(default=600.0, gt=0)
    # Compile outputs kept for repeated sources, least recently used evicted beyond this; 0 turns it off.
    local_compile_cache_mb: int = Field(default=256, ge=0)


class KubernetesSettings(BaseModel):
    """The Kubernetes backend: one Job per run (functions/backends/kubernetes).

    Auth "auto" is EKS when a cluster name is set, else kubeconfig.
    """

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
    # Where runner pods may run: only on nodes with these labels (JSON map, e.g. the dedicated node group's
    # label and {"kubernetes.io/arch": "amd64"} for the images' platform), tolerating these taints (JSON
    # list in kubectl's syntax, e.g. ["code-exec/untrusted=true:NoSchedule"]). Empty: anywhere.
    k8s_node_selector: dict[str, str] = Field(default_factory=dict)
    k8s_tolerations: list[Annotated[str, StringConstraints(pattern=TAINT_PATTERN)]] = Field(
        default_factory=list
    )
    # Jobs the runner namespace's ResourceQuota admits at once (count/jobs.batch); the deploy caps the
    # Lambda's concurrency at it and the preflight checks the namespace admits as many.
    k8s_job_quota: int = Field(default=50, gt=0)
    k8s_service_account: str = "runner"
    runner_uid: int = Field(default=10001, gt=0)  # the non-root user baked into every runner image
    runner_gid: int = Field(default=10001, gt=0)
    k8s_cpu_request: str = "100m"
    k8s_cpu_limit: str = "500m"
    k8s_memory_request_mb: int = Field(default=128, gt=0)
    # The runner's own memory in each container, on top of the step's (the container's limit covers both).
    k8s_runner_overhead_mb: int = Field(default=32, gt=0)
    k8s_tmp_size_mb: int = Field(default=64, gt=0)
    k8s_box_size_mb: int = Field(default=256, gt=0)  # the program's files: source and what compiling makes
    k8s_job_ttl_s: int = Field(default=300, ge=0)
    # The Job's deadline: the run's own time (compile + cases x timeout) plus this (container starts, pulls).
    k8s_deadline_grace_s: float = Field(default=10.0, ge=0)
    # How long past the run's own time, from when its first container is seen running, the service waits
    # before it kills the Job and answers time_limit_exceeded (a runner that is frozen or gone).
    k8s_wait_grace_s: float = Field(default=1.5, gt=0)
    k8s_quota_retry_after_s: int = Field(default=5, gt=0)
    k8s_api_max_attempts: int = Field(default=4, gt=0)
    k8s_api_backoff_s: float = Field(default=0.2, gt=0)
    k8s_api_timeout_s: float = Field(default=10.0, gt=0)


class Settings(
    ServiceSettings,
    LimitSettings,
    ExecutionsSettings,
    DevServerSettings,
    LocalSandboxSettings,
    KubernetesSettings,
    BaseSettings,
):
    """Every setting, one group per concern; each reads `EXEC_<field name>` (env names are the fields')."""

    model_config = SettingsConfigDict(env_prefix="EXEC_", frozen=True, extra="ignore")

    @model_validator(mode="after")
    def _defaults_within_ceilings(self) -> Settings:
        if self.default_timeout_s > self.max_timeout_s:
            raise ValueError("EXEC_DEFAULT_TIMEOUT_S must not exceed EXEC_MAX_TIMEOUT_S")
        if not self.min_memory_limit_mb <= self.default_memory_limit_mb <= self.max_memory_limit_mb:
            raise ValueError("EXEC_DEFAULT_MEMORY_LIMIT_MB must lie between the minimum and the maximum")
        if self.async_poll_initial_s > self.async_poll_max_s:
            raise ValueError("EXEC_ASYNC_POLL_INITIAL_S must not exceed EXEC_ASYNC_POLL_MAX_S")
        return self


@cache
def get_settings() -> Settings:
    return Settings()
