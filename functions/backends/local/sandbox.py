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
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
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
from functions.core.errors import BackendUnavailableError
from functions.core.languages import LanguageSpec
from functions.settings import Settings, get_settings

logger = logging.getLogger(__name__)

_READ_CHUNK_BYTES = 64 * 1024
_POLL_TICK_S = 0.05
# After the runner exits, stragglers holding the pipes get this long before we stop reading.
_DRAIN_AFTER_EXIT_S = 1.0
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


@dataclass(slots=True)
class _Streams:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    cancelled: bool = False
    stdout_overflow: bool = False


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
    argv = [*_drop_privileges_prefix(config), *build_bwrap_argv(config.layout(runner_env))]
    cgroup = _create_cgroup(
        config,
        memory_limit_mb=language.sandbox_memory_mb(memory_limit_mb) + config.runner_memory_mb,
        max_pids=max_processes + config.runner_pids,
    )
    if cgroup is not None:
        argv = [
            "/bin/sh",
            "-c",
            _JOIN_CGROUP_SCRIPT,
            "join-cgroup",
            *map(str, cgroup.procs_files),
            "--",
            *argv,
        ]
    started_s = time.monotonic()
    try:
        streams, exit_code = _run(
            argv=argv,
            stdin=stdin,
            config=config,
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


def _run(
    *,
    argv: list[str],
    stdin: bytes | None,
    config: SandboxConfig,
    cgroup: RunCgroup | None,
    deadline_s: float,
    cancel: threading.Event | None,
) -> tuple[_Streams, int]:
    try:
        proc = _start(argv, stdin)
    except OSError as exc:
        raise BackendUnavailableError(f"cannot start the sandbox ({argv[0]}): {exc}") from exc
    try:
        streams = _communicate(
            proc=proc, stdin=stdin, config=config, cgroup=cgroup, deadline_s=deadline_s, cancel=cancel
        )
    finally:
        _kill(proc, cgroup)
    returncode = proc.returncode
    return streams, 128 - returncode if returncode < 0 else returncode


def _start(argv: list[str], stdin: bytes | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # bwrap clears the sandbox's env anyway; the outer process gets nothing of ours either.
        env={"PATH": "/usr/bin:/bin"},
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )


def _kill(proc: subprocess.Popen[bytes], cgroup: RunCgroup | None) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    proc.wait()


def _communicate(
    *,
    proc: subprocess.Popen[bytes],
    stdin: bytes | None,
    config: SandboxConfig,
    cgroup: RunCgroup | None,
    deadline_s: float,
    cancel: threading.Event | None,
) -> _Streams:
    """Feed stdin and read both streams (bounded) until EOF, the deadline or a cancel."""
    assert proc.stdout is not None  # noqa: S101 - Popen was given PIPE
    assert proc.stderr is not None  # noqa: S101
    streams = _Streams()
    pending = memoryview(stdin or b"")
    with selectors.DefaultSelector() as selector:
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            selector.register(proc.stdin, selectors.EVENT_WRITE)
        selector.register(proc.stdout, selectors.EVENT_READ, streams.stdout)
        selector.register(proc.stderr, selectors.EVENT_READ, streams.stderr)
        exited_at_s: float | None = None
        while selector.get_map():
            now_s = time.monotonic()
            if cancel is not None and cancel.is_set():
                streams.cancelled = True
                break
            if now_s >= deadline_s:
                streams.timed_out = True
                break
            if exited_at_s is None and proc.poll() is not None:
                # The runner is done: whatever it left behind dies now, so the pipes reach EOF.
                exited_at_s = now_s
                if cgroup is not None:
                    cgroup.kill_all()
            if exited_at_s is not None and now_s - exited_at_s > _DRAIN_AFTER_EXIT_S:
                break
            for key, _ in selector.select(timeout=min(_POLL_TICK_S, deadline_s - now_s)):
                if key.fileobj is proc.stdin:
                    pending = _feed(selector, proc, pending)
                elif not _drain(selector, key, streams, config):
                    return streams
    return streams


def _feed(selector: selectors.BaseSelector, proc: subprocess.Popen[bytes], pending: memoryview) -> memoryview:
    assert proc.stdin is not None  # noqa: S101
    try:
        written = os.write(proc.stdin.fileno(), pending[:_READ_CHUNK_BYTES]) if pending else 0
    except BlockingIOError:
        return pending
    except BrokenPipeError:
        written = len(pending)
    pending = pending[written:]
    if not pending:
        selector.unregister(proc.stdin)
        proc.stdin.close()
    return pending


def _drain(
    selector: selectors.BaseSelector, key: selectors.SelectorKey, streams: _Streams, config: SandboxConfig
) -> bool:
    """Read one chunk; False when stdout overflowed its cap (the caller then kills the run)."""
    buffer: bytearray = key.data
    chunk = os.read(key.fd, _READ_CHUNK_BYTES)
    if not chunk:
        selector.unregister(key.fileobj)
        return True
    is_stdout = buffer is streams.stdout
    cap = config.report_max_bytes if is_stdout else config.stderr_max_bytes
    room = cap - len(buffer)
    buffer += chunk[: max(room, 0)]
    if len(chunk) > room and is_stdout:
        streams.stdout_overflow = True
        return False
    return True
