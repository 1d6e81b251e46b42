"""A test stand-in for a container runtime: one container of a pod in a bubblewrap sandbox.

What a runner container gets on a real node, as far as the runner can tell: the image's files (the host's
/usr and the languages' paths, read-only, with the runner program at /opt/runner), the pod's volumes at their
mount paths (host directories shared by the pod's containers), the container's env and nothing else, its own
PID namespace with the entrypoint as PID 1, no network, no capabilities, the pod's host uid (one per pod, so
the pod's containers share a uid as they do in Kubernetes), the `RuntimeDefault` seccomp profile (Docker's
default list: ptrace, process_vm_readv and pidfd_getfd allowed), and a cgroup with the container's memory
limit, visible read-only at /sys/fs/cgroup like a container's own.

A memory kill ends the whole container, as the kubelet's cgroup v2 default (`memory.oom.group`) does: when
the cgroup's OOM-kill counter moves, every process of it is killed and nothing it printed survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from functions.backends.local.backend import host_setup
from functions.backends.local.bwrap import Bind, SandboxLayout, build_bwrap_argv, sandbox_env
from functions.backends.local.cgroup_run import V2, RunCgroup
from functions.backends.local.process_io import Pipes, pump
from functions.backends.local.sandbox import HostSetup, identity_prefix
from functions.backends.local.seccomp_filter import SeccompProfile, build_filter_bpf, seccomp_fd
from functions.backends.local.uids import UidLease
from functions.core.output_digest import Capture
from functions.settings import Settings

RUNNER_MOUNT_PATH = "/opt/runner"  # where every runner image has the runner program
KILLED_EXIT_CODE = 137  # a runtime's exit code for a container it killed (128 + SIGKILL)
LOG_LIMIT_BYTES = 256 * 1024 * 1024  # a container log is kept whole, as a kubelet keeps it
OOM_POLL_S = 0.01
START_TIMEOUT_S = 10.0
# The container's entrypoint and what it forks beyond the task's own process limit.
RUNTIME_PIDS = 16


@dataclass(frozen=True, slots=True)
class Mount:
    host_dir: Path
    mount_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    command: tuple[str, ...]
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    memory_limit_mb: int
    max_pids: int


@dataclass(frozen=True, slots=True)
class ContainerOutcome:
    exit_code: int
    oom_killed: bool  # the cgroup's OOM-kill counter moved: the container was killed as a whole
    stopped: bool  # killed from outside: its deadline or a cancel
    log: bytes  # stdout, then stderr
    started_at_s: float
    finished_at_s: float


class ContainerRuntime:
    """Runs containers on this host; one per node agent (or test)."""

    def __init__(self, host: HostSetup, runner_dir: Path, *, seccomp_bpf: bytes | None = None) -> None:
        self.host = host
        self.runner_dir = runner_dir
        # RuntimeDefault unless a test wants another filter (to show what the runner stops on its own).
        self.seccomp_bpf = seccomp_bpf or build_filter_bpf(SeccompProfile.RUNTIME_DEFAULT)

    @classmethod
    def from_settings(cls, settings: Settings) -> ContainerRuntime:
        return cls(host_setup(settings), settings.runners_dir / "runner")

    def run(
        self,
        spec: ContainerSpec,
        lease: UidLease,
        *,
        timeout_s: float,
        cancel: threading.Event,
        on_start: Callable[[int], None] | None = None,
    ) -> ContainerOutcome:
        """Run the container to its end, its deadline (`timeout_s`) or `cancel`; `on_start(host pid)`."""
        cgroup = self.host.cgroups.create(memory_limit_mb=spec.memory_limit_mb, max_pids=spec.max_pids)
        try:
            return _Run(self, spec, lease, cgroup).run(timeout_s, cancel, on_start)
        finally:
            cgroup.kill_all()
            cgroup.remove()

    def layout(self, spec: ContainerSpec, cgroup: RunCgroup) -> SandboxLayout:
        cgroup_target = "/sys/fs/cgroup" if cgroup.version == V2 else "/sys/fs/cgroup/memory"
        binds = (
            Bind(str(self.runner_dir), RUNNER_MOUNT_PATH),
            *(Bind(str(mount.host_dir), mount.mount_path, not mount.read_only) for mount in spec.mounts),
            Bind(str(cgroup.dirs[0]), cgroup_target),
        )
        return SandboxLayout(
            bwrap_path=self.host.bwrap_path,
            system_entries=self.host.system_entries,
            masked_dirs=self.host.masked_dirs,
            extra_entries=self.host.extra_entries,
            box_source=None,
            box_writable=False,
            launcher_source=None,
            tmp_size_mb=self.host.tmp_size_mb,
            env={**sandbox_env(), **spec.env},
            binds=binds,
            command=spec.command,
            as_pid_1=True,
        )


class _Run:
    def __init__(
        self, runtime: ContainerRuntime, spec: ContainerSpec, lease: UidLease, cgroup: RunCgroup
    ) -> None:
        self.runtime = runtime
        self.spec = spec
        self.lease = lease
        self.cgroup = cgroup

    def run(
        self, timeout_s: float, cancel: threading.Event, on_start: Callable[[int], None] | None
    ) -> ContainerOutcome:
        """Start bwrap as the pod's uid, blocked; move it into the cgroup; then let the entrypoint start, so
        that every process of the container is born in the cgroup (as the local sandboxes do)."""
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        started_at_s = time.time()
        try:
            with seccomp_fd(self.runtime.seccomp_bpf) as filter_fd:
                argv = [
                    *identity_prefix(self.runtime.host.setpriv_path, self.lease),
                    *build_bwrap_argv(
                        self.runtime.layout(self.spec, self.cgroup),
                        block_fd=block_r,
                        info_fd=info_w,
                        seccomp_fd=filter_fd,
                    ),
                ]
                monitor = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout_w,
                    stderr=stderr_w,
                    pass_fds=(block_r, info_w, filter_fd),
                    env={"PATH": "/usr/bin:/bin"},
                    start_new_session=True,
                    cwd="/",
                )
        finally:
            for fd in (stdout_w, stderr_w, info_w, block_r):
                os.close(fd)
        pid = _child_pid(info_r)
        try:
            self.cgroup.adopt(monitor.pid)
            if pid is not None:
                self.cgroup.adopt(pid)
        finally:
            os.write(block_w, b"x")
            os.close(block_w)
        if on_start is not None and pid is not None:
            on_start(pid)
        # The container's stdin is /dev/null: the pipe the loop would feed is closed at once.
        pipes = Pipes(stdin=os.open(os.devnull, os.O_WRONLY), stdout=stdout_r, stderr=stderr_r)
        return self._watch(monitor, pipes, timeout_s, cancel, started_at_s)

    def _watch(
        self,
        monitor: subprocess.Popen[bytes],
        pipes: Pipes,
        timeout_s: float,
        cancel: threading.Event,
        started_at_s: float,
    ) -> ContainerOutcome:
        stop = threading.Event()
        done = threading.Event()
        watcher = threading.Thread(target=self._watch_oom, args=(cancel, stop, done), daemon=True)
        watcher.start()
        stdout, stderr = Capture(LOG_LIMIT_BYTES), Capture(LOG_LIMIT_BYTES)
        try:
            outcome = pump(
                monitor,
                pipes,
                stdin=b"",
                stdout=stdout,
                stderr=stderr,
                deadline_s=time.monotonic() + timeout_s,
                cancel=stop,
                on_exit=self.cgroup.kill_all,  # PID 1 is gone: so is its namespace
                on_stop=self.cgroup.kill_all,
            )
        finally:
            done.set()
            watcher.join()
            pipes.close()
        oom_killed = self.cgroup.oom_kills() > 0
        stopped = outcome.timed_out or outcome.cancelled
        killed = oom_killed or stopped
        return ContainerOutcome(
            exit_code=KILLED_EXIT_CODE if killed else _exit_code(monitor.returncode),
            oom_killed=oom_killed,
            stopped=stopped and not oom_killed,
            log=b"" if oom_killed else bytes(stdout.data) + bytes(stderr.data),
            started_at_s=started_at_s,
            finished_at_s=time.time(),
        )

    def _watch_oom(self, cancel: threading.Event, stop: threading.Event, done: threading.Event) -> None:
        """Stop the container at a cancel or at its first OOM kill (the whole container dies)."""
        while not done.wait(OOM_POLL_S):
            if cancel.is_set() or self.cgroup.oom_kills() > 0:
                stop.set()
                return


def _exit_code(returncode: int) -> int:
    """bubblewrap reports its init's death by signal N as 128 + N, as a runtime does; its own as -N."""
    return 128 - returncode if returncode < 0 else returncode


def _child_pid(info_fd: int) -> int | None:
    """The container's PID 1 as the host sees it (bwrap's --info-fd), or None if it never started."""
    deadline_s = time.monotonic() + START_TIMEOUT_S
    data = b""
    try:
        while b"}" not in data:
            ready, _, _ = select.select([info_fd], [], [], max(0.0, deadline_s - time.monotonic()))
            chunk = os.read(info_fd, 4096) if ready else b""
            if not chunk:
                return None
            data += chunk
    finally:
        os.close(info_fd)
    with contextlib.suppress(ValueError, KeyError):
        return int(json.loads(data)["child-pid"])
    return None
