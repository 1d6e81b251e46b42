"""Run the runner program inside bubblewrap, limited by a per-run cgroup; one code path for every caller.

Reusable API (the local backend and the Kubernetes test node agent both call it)::

    run_runner_sandboxed(
        *,
        language: LanguageSpec,              # sizes the memory limit (compiler / runtime overhead)
        runner_env: dict[str, str] | None,   # extra env inside the sandbox, e.g. RUNNER_TASK_CHUNKS and
                                             # RUNNER_TASK_0..N-1; nothing of the caller's env leaks in
        stdin: bytes | None,                 # the task JSON on the runner's stdin (None: /dev/null)
        memory_limit_mb: int,                # the program's limit (task.limits.memory_limit_mb); the
                                             # cgroup gets language.sandbox_memory_mb(it) + runner overhead
        max_processes: int,                  # the program's limit; the pids cgroup adds the runner's needs
        wall_timeout_s: float,               # hard kill of the whole sandbox after this long
        cancel: threading.Event | None = None,  # set it to kill the run early (cancelled=True)
        config: SandboxConfig | None = None, # None: built once from functions.settings.get_settings()
    ) -> SandboxOutcome

    SandboxOutcome(stdout: bytes, stderr: bytes, exit_code: int, oom_killed: bool, timed_out: bool,
                   peak_memory_kb: int, wall_time_s: float, cancelled: bool, stdout_overflow: bool,
                   cgroup_used: bool)

`stdout` is bounded by `config.report_max_bytes` (a larger output kills the run, stdout_overflow=True);
`exit_code` is bubblewrap's status (128+N when killed by signal N). A sandbox that cannot start raises
BackendUnavailableError. As root, bwrap is started through `setpriv` as an unprivileged host uid
(settings.local_sandbox_host_uid, default 65534): the sandbox's uid must never be host root underneath,
or root-owned files like /proc/sys/* pass the permission check. When the call returns, no process of
the run is alive: the cgroup is emptied with SIGKILL, bwrap's process group is killed, and bwrap's
`--die-with-parent` plus the PID namespace take down anything a cgroup could not hold.

This module builds the configuration and the command line; `process_io` runs it (the I/O loop).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from functions.backends.local.bwrap import (
    ETC_ENTRIES,
    SYSTEM_DIRS,
    HostEntry,
    SandboxLayout,
    build_bwrap_argv,
    host_entries,
    sandbox_env,
)
from functions.backends.local.cgroups import CgroupManager, RunCgroup, detect_cgroups
from functions.backends.local.process_io import Streams, run_process
from functions.core.languages import LanguageSpec
from functions.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# Joins the per-run cgroup(s) before bwrap starts, so every process of the run is accounted from birth.
# It runs with the service's identity (allowed to move itself), then execs setpriv/bwrap.
# Arguments: procs files, then "--", then the command. Exit 125 = could not join (never runs bwrap).
_JOIN_CGROUP_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    bwrap_path: str
    python_path: str
    runner_dir: Path
    tmp_size_mb: int
    runner_memory_mb: int
    runner_pids: int
    report_max_bytes: int
    stderr_max_bytes: int
    cgroups: CgroupManager | None
    # Host identity of the sandbox when the service runs as root (setpriv drops to it before bwrap).
    host_uid: int = 65534
    host_gid: int = 65534
    setpriv_path: str = "/usr/bin/setpriv"
    system_entries: tuple[HostEntry, ...] = field(
        default_factory=lambda: host_entries((*SYSTEM_DIRS, *ETC_ENTRIES))
    )

    def layout(self, runner_env: dict[str, str] | None) -> SandboxLayout:
        return SandboxLayout(
            bwrap_path=self.bwrap_path,
            python_path=self.python_path,
            runner_dir=str(self.runner_dir),
            system_entries=self.system_entries,
            tmp_size_mb=self.tmp_size_mb,
            env=sandbox_env(runner_env),
        )


def config_from_settings(settings: Settings) -> SandboxConfig:
    if os.geteuid() == 0 and not settings.local_setpriv_path.exists():
        # Never run the sandbox backed by host root: refuse to start instead.
        raise RuntimeError(
            f"{settings.local_setpriv_path} (util-linux) is required to drop root before bubblewrap"
        )
    if not settings.local_bwrap_path.exists():
        logger.error(
            "%s not found: install bubblewrap (make system-deps); runs will fail", settings.local_bwrap_path
        )
    cgroups = detect_cgroups(settings.local_cgroup_root) if settings.local_use_cgroups else None
    if cgroups is None:
        logger.warning("local sandbox runs without cgroups: memory and pids rely on the runner's rlimits")
    return SandboxConfig(
        bwrap_path=str(settings.local_bwrap_path),
        python_path=str(settings.sandbox_python),
        runner_dir=settings.runners_dir / "runner",
        tmp_size_mb=settings.local_tmp_size_mb,
        runner_memory_mb=settings.local_runner_memory_mb,
        runner_pids=settings.local_runner_pids,
        report_max_bytes=settings.local_report_max_bytes,
        stderr_max_bytes=settings.local_stderr_max_bytes,
        cgroups=cgroups,
        host_uid=settings.local_sandbox_host_uid,
        host_gid=settings.local_sandbox_host_gid,
        setpriv_path=str(settings.local_setpriv_path),
    )


@cache
def default_sandbox_config() -> SandboxConfig:
    return config_from_settings(get_settings())


@dataclass(frozen=True, slots=True)
class SandboxOutcome:
    stdout: bytes
    stderr: bytes
    exit_code: int
    oom_killed: bool
    timed_out: bool
    peak_memory_kb: int
    wall_time_s: float = 0.0
    cancelled: bool = False
    stdout_overflow: bool = False
    cgroup_used: bool = False


def run_runner_sandboxed(
    *,
    language: LanguageSpec,
    runner_env: dict[str, str] | None,
    stdin: bytes | None,
    memory_limit_mb: int,
    max_processes: int,
    wall_timeout_s: float,
    cancel: threading.Event | None = None,
    config: SandboxConfig | None = None,
) -> SandboxOutcome:
    """Run the runner once in a fresh sandbox (see the module docstring for the contract)."""
    config = config or default_sandbox_config()
    cgroup = _create_cgroup(
        config,
        memory_limit_mb=language.sandbox_memory_mb(memory_limit_mb) + config.runner_memory_mb,
        max_pids=max_processes + config.runner_pids,
    )
    streams = Streams(stdout_max_bytes=config.report_max_bytes, stderr_max_bytes=config.stderr_max_bytes)
    started_s = time.monotonic()
    try:
        exit_code = run_process(
            argv=_sandbox_argv(config, runner_env, cgroup),
            stdin=stdin,
            streams=streams,
            cgroup=cgroup,
            deadline_s=started_s + wall_timeout_s,
            cancel=cancel,
        )
        wall_time_s = time.monotonic() - started_s
        oom_killed = cgroup is not None and cgroup.oom_kills() > 0
        peak_memory_kb = cgroup.peak_memory_kb() if cgroup is not None else 0
    finally:
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
    return SandboxOutcome(
        stdout=bytes(streams.stdout),
        stderr=bytes(streams.stderr),
        exit_code=exit_code,
        oom_killed=oom_killed,
        timed_out=streams.timed_out,
        peak_memory_kb=peak_memory_kb,
        wall_time_s=wall_time_s,
        cancelled=streams.cancelled,
        stdout_overflow=streams.stdout_overflow,
        cgroup_used=cgroup is not None,
    )


def _sandbox_argv(
    config: SandboxConfig, runner_env: dict[str, str] | None, cgroup: RunCgroup | None
) -> list[str]:
    """[join the cgroup] [drop root] bwrap ... runner: the whole command line of one run."""
    argv = [*_drop_privileges_prefix(config), *build_bwrap_argv(config.layout(runner_env))]
    if cgroup is None:
        return argv
    return ["/bin/sh", "-c", _JOIN_CGROUP_SCRIPT, "join-cgroup", *map(str, cgroup.procs_files), "--", *argv]


def _drop_privileges_prefix(config: SandboxConfig) -> list[str]:
    """As root, bwrap must run as an unprivileged host uid: its user namespace maps the sandbox's uid
    to the caller's, and a sandbox uid backed by host root passes every DAC check on root-owned files
    (e.g. /proc/sys is writable, changing host-wide sysctls)."""
    if os.geteuid() != 0:
        return []
    uid, gid = str(config.host_uid), str(config.host_gid)
    return [config.setpriv_path, "--reuid", uid, "--regid", gid, "--clear-groups", "--"]


def _create_cgroup(config: SandboxConfig, *, memory_limit_mb: int, max_pids: int) -> RunCgroup | None:
    if config.cgroups is None:
        return None
    try:
        return config.cgroups.create(memory_limit_mb=memory_limit_mb, max_pids=max_pids)
    except OSError as exc:
        # Running without limits would be worse than refusing, but the runner's rlimits still hold.
        logger.warning("cannot create a run cgroup (%s); this run relies on rlimits only", exc)
        return None
