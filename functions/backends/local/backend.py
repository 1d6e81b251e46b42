"""LocalBackend: each step of a task in its own bubblewrap sandbox on this machine, a bounded number at a time."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from functions.backends.local.boxes import ArtifactLimits, BoxStore, make_private_dir
from functions.backends.local.bwrap import ETC_ENTRIES, MASKED_DIRS, SANDBOX_PATH, SYSTEM_DIRS, host_entries
from functions.backends.local.cgroups import detect_cgroups
from functions.backends.local.compile_cache import CompileCache
from functions.backends.local.keeper import TaskRunner
from functions.backends.local.pool import SlotPool
from functions.backends.local.sandbox import HostSetup, Launch, PhaseLimits, Sandbox
from functions.backends.local.seccomp_filter import SeccompProfile, build_filter_bpf
from functions.backends.local.uids import UidPool
from functions.backends.local.versions import VersionCache
from functions.backends.local.warm_pool import WarmPool
from functions.core.backend import Toolchain
from functions.core.errors import DeadlineExceededError
from functions.core.languages import LanguageSpec, load_registry
from functions.core.protocol import RunnerReport, RunnerTask, b64decode
from functions.settings import Settings

# What a compile step may leave behind for the runs (a Go or Rust binary is a few MB).
ARTIFACT_LIMITS = ArtifactLimits(max_files=1000, max_total_bytes=256 * 1024 * 1024)
VERSION_PROBE_LIMITS = PhaseLimits(
    timeout_s=10.0,
    memory_limit_mb=1024,
    max_processes=64,
    file_size_bytes=1024 * 1024,
    output_limit_bytes=4096,
)


class LocalBackend:
    name = "local"

    def __init__(self, *, host: HostSetup, runner: TaskRunner, pool: SlotPool, warm: WarmPool) -> None:
        self.host = host
        self.runner = runner
        self.pool = pool
        self.warm = warm

    def close(self) -> None:
        self.warm.close()

    def toolchain(self, language: LanguageSpec) -> Toolchain:
        versions = self.runner.versions
        if not versions.available(language):
            return Toolchain(available=False, version="")
        return Toolchain(available=True, version=versions.version(language))

    def run(self, task: RunnerTask, *, budget_s: float) -> RunnerReport:
        started_s = time.monotonic()
        with self.pool.slot(wait_s=budget_s):
            remaining_s = budget_s - (time.monotonic() - started_s)
            if remaining_s <= 0:
                raise DeadlineExceededError(
                    "the request's time budget ran out while waiting for a sandbox",
                    execution_id=task.execution_id,
                )
            return self.runner.run(task, budget_s=remaining_s)


def probe_output(host: HostSetup, language: LanguageSpec) -> str:
    """What the language's version command prints, run in a sandbox like any program."""
    sandbox = Sandbox(host, writable_box=False)
    try:
        report = sandbox.run(Launch(language.version_command, language.env), VERSION_PROBE_LIMITS)
    finally:
        sandbox.close()
    output = b64decode(report.stdout.data_b64) + b"\n" + b64decode(report.stderr.data_b64)
    return output.decode("utf-8", errors="replace")


def _installed_launcher(built: Path, data_dir: Path) -> Path:
    """A copy of the launcher in the data dir, beside the boxes: what a sandbox's mount table shows of the
    host stays inside the data dir, and a rebuild never changes the binary under a running service."""
    installed = data_dir / "launch"
    staging = data_dir / f".launch-{os.getpid()}"
    shutil.copyfile(built, staging)
    staging.chmod(0o755)
    staging.replace(installed)
    return installed


def _setpriv_path() -> str | None:
    """As root, each sandbox runs as a uid of its own, switched to by util-linux's setpriv."""
    if os.geteuid() != 0:
        return None
    path = shutil.which("setpriv", path=SANDBOX_PATH)
    if path is None:
        raise RuntimeError(
            "setpriv not found: install util-linux (as root, each sandbox's uid switch needs it)"
        )
    return path


def host_setup(settings: Settings) -> HostSetup:
    """Everything the sandboxes need from this host; refuses to start rather than run less isolated."""
    if not settings.local_bwrap_path.exists():
        raise RuntimeError(f"{settings.local_bwrap_path} not found: install bubblewrap (make system-deps)")
    if not settings.local_launcher_path.is_file():
        raise RuntimeError(
            f"{settings.local_launcher_path} not found: build the sandbox's launcher (make setup)"
        )
    cgroups = detect_cgroups(settings.local_cgroup_root)
    if cgroups is None:
        raise RuntimeError(
            "the local sandbox needs cgroups (v1 memory+pids, or a v2 hierarchy with memory and pids) that this "
            "process may manage: run the service as root, or point EXEC_LOCAL_CGROUP_ROOT at a delegated subtree"
        )
    data_dir = make_private_dir(settings.data_dir, 0o711)
    languages = load_registry(settings.runners_dir).all()
    language_paths = [path for language in languages for path in language.sandbox_paths]
    return HostSetup(
        bwrap_path=str(settings.local_bwrap_path),
        launcher_path=str(_installed_launcher(settings.local_launcher_path, data_dir)),
        setpriv_path=_setpriv_path(),
        system_entries=host_entries(SYSTEM_DIRS),
        masked_dirs=tuple(path for path in MASKED_DIRS if Path(path).is_dir()),
        extra_entries=host_entries((*ETC_ENTRIES, *language_paths)),
        tmp_size_mb=settings.local_tmp_size_mb,
        cgroups=cgroups,
        uids=UidPool(
            base=settings.local_sandbox_uid_base,
            count=settings.local_sandbox_uid_count,
            lock_dir=settings.local_uid_lease_dir,
        ),
        boxes=BoxStore(data_dir / "boxes"),
        seccomp_bpf=build_filter_bpf(SeccompProfile.SANDBOX),  # SeccompUnavailableError: never without it
        overhead_memory_mb=settings.local_sandbox_overhead_mb,
        overhead_pids=settings.local_sandbox_overhead_pids,
    )


def create_backend(settings: Settings) -> LocalBackend:
    host = host_setup(settings)
    versions = VersionCache(lambda language: probe_output(host, language), search_path=SANDBOX_PATH)
    warm = WarmPool(host, size=settings.local_warm_pool_size, idle_s=settings.local_warm_idle_s)
    compile_cache = None
    if settings.local_compile_cache_mb > 0:
        compile_cache = CompileCache(
            settings.data_dir / "compile-cache", max_bytes=settings.local_compile_cache_mb * 1024 * 1024
        )
    runner = TaskRunner(
        warm,
        versions,
        scratch_root=make_private_dir(settings.data_dir / "artifacts", 0o711),
        artifact_limits=ARTIFACT_LIMITS,
        compile_cache=compile_cache,
    )
    return LocalBackend(
        host=host,
        runner=runner,
        pool=SlotPool(size=settings.local_max_concurrency, queue_wait_s=settings.local_queue_wait_s),
        warm=warm,
    )
