"""One bubblewrap sandbox for exactly one process tree: a compile step, one test case, or a version probe.

A sandbox is started complete — leased host uid, its own cgroup, its box, seccomp filter — and then waits
(bwrap `--block-fd`) for its task. `run` writes the program's files and `.launch` (which lowers the rlimits
and execs the program) into the box, sets the cgroup limits, unblocks it, feeds stdin, captures the output, enforces the deadline from
outside, and reads the figures the kernel kept: every figure of the report is observed here, outside the
sandbox, where the program cannot reach it. `close` empties and removes everything; a sandbox is never used
twice.
"""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from functions.backends.local.boxes import LAUNCH_FILE, Box, BoxStore
from functions.backends.local.bwrap import HostEntry, SandboxLayout, build_bwrap_argv, sandbox_env
from functions.backends.local.cgroup_run import RunCgroup
from functions.backends.local.cgroups import CgroupManager
from functions.backends.local.launch import LaunchLimits, launch_file
from functions.backends.local.process_io import Pipes, pump
from functions.backends.local.reports import process_report
from functions.backends.local.seccomp_filter import seccomp_fd
from functions.backends.local.uids import UidLease, UidPool
from functions.core.errors import BackendUnavailableError
from functions.core.output_digest import Capture
from functions.core.protocol import ProcessReport

_STARTUP_MEMORY_MB = 64  # while bwrap sets the sandbox up, before the task's own limit applies
OPEN_FILES_LIMIT = 256


@dataclass(frozen=True, slots=True)
class HostSetup:
    """What every sandbox of this process shares, resolved once at start-up."""

    bwrap_path: str
    launcher_path: str  # launch.c built static (make setup)
    setpriv_path: str | None  # util-linux's setpriv when running as root (each sandbox gets its own uid)
    system_entries: tuple[HostEntry, ...]
    masked_dirs: tuple[str, ...]
    extra_entries: tuple[HostEntry, ...]
    tmp_size_mb: int
    cgroups: CgroupManager
    uids: UidPool
    boxes: BoxStore
    seccomp_bpf: bytes
    # bubblewrap's own processes (its monitor, the namespace's init, the launcher) on top of the task.
    overhead_memory_mb: int = 8
    overhead_pids: int = 4
    start_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Launch:
    """What `.launch` execs: argv (searched on PATH) and the variables it adds to the sandbox's env."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    merge_stderr: bool = False  # the program's stderr is its stdout


@dataclass(frozen=True, slots=True)
class PhaseLimits:
    timeout_s: float
    memory_limit_mb: int  # the cgroup's, for every process of the phase
    max_processes: int
    file_size_bytes: int
    output_limit_bytes: int
    address_space_bytes: int | None = None  # RLIMIT_AS, for runtimes that fail cleanly under it


def identity_prefix(setpriv_path: str | None, lease: UidLease | None) -> list[str]:
    """What bwrap runs under: as root, `setpriv` first switches to the leased uid with no groups, since the
    sandbox's user must never be host root underneath (root-owned files like /proc/sys/* would pass the
    permission check). Not Popen's `user=`: that rules out vfork, and forking the whole service holds its
    interpreter lock and copies its page tables, which slowed the run in progress by a millisecond or more."""
    if setpriv_path is None or lease is None:
        return []
    return [setpriv_path, f"--reuid={lease.uid}", f"--regid={lease.gid}", "--clear-groups", "--"]


class Sandbox:
    """Started on construction; `run` once, then `close` (also after a failed start)."""

    def __init__(self, host: HostSetup, *, writable_box: bool) -> None:
        self.host = host
        self.writable_box = writable_box
        self._lease: UidLease | None = None
        self._cgroup: RunCgroup | None = None
        self._monitor: subprocess.Popen[bytes] | None = None
        self._pipes: Pipes | None = None
        self._block_fd: int | None = None
        self.box: Box = host.boxes.new_box()
        self.child_pid = 0
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        self._lease = self.host.uids.lease()
        if self.writable_box:
            self.box.hand_to(self._lease.uid, self._lease.gid)
        try:
            self._cgroup = self.host.cgroups.create(
                memory_limit_mb=_STARTUP_MEMORY_MB, max_pids=self.host.overhead_pids
            )
        except OSError as exc:
            raise BackendUnavailableError(f"cannot create the sandbox's cgroup: {exc}") from exc
        self._spawn()

    def _spawn(self) -> None:
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = (None, stdout_w) if self.writable_box else os.pipe()
        block_r, self._block_fd = os.pipe()
        info_r, info_w = os.pipe()
        child_ends = [stdin_r, stdout_w, block_r, info_w] + ([] if stderr_r is None else [stderr_w])
        self._pipes = Pipes(stdin=stdin_w, stdout=stdout_r, stderr=stderr_r)
        try:
            with seccomp_fd(self.host.seccomp_bpf) as filter_fd:
                self._monitor = subprocess.Popen(
                    self._argv(block_fd=block_r, info_fd=info_w, seccomp_fd=filter_fd),
                    stdin=stdin_r,
                    stdout=stdout_w,
                    stderr=stderr_w,
                    pass_fds=(block_r, info_w, filter_fd),
                    # bwrap clears the sandbox's env anyway; the outer process gets nothing of ours either.
                    env={"PATH": "/usr/bin:/bin"},
                    start_new_session=True,
                    cwd="/",
                )
        except OSError as exc:
            os.close(info_r)
            raise BackendUnavailableError(
                f"cannot start the sandbox ({self.host.bwrap_path}): {exc}"
            ) from exc
        finally:
            for fd in child_ends:
                os.close(fd)
        self.child_pid = self._read_child_pid(info_r)
        self._adopt()

    def _adopt(self) -> None:
        """Move bwrap's two processes into the cgroup while the sandbox waits: the namespace's init and the
        program are forked from the waiting child only once unblocked, so they are born inside it."""
        assert self._cgroup is not None  # noqa: S101 - created before the spawn
        assert self._monitor is not None  # noqa: S101
        try:
            self._cgroup.adopt(self._monitor.pid)
            self._cgroup.adopt(self.child_pid)
        except OSError as exc:
            raise BackendUnavailableError(f"cannot move the sandbox into its cgroup: {exc}") from exc

    def _argv(self, *, block_fd: int, info_fd: int, seccomp_fd: int) -> list[str]:
        assert self._cgroup is not None  # noqa: S101 - created just before
        assert self._lease is not None  # noqa: S101
        layout = SandboxLayout(
            bwrap_path=self.host.bwrap_path,
            system_entries=self.host.system_entries,
            masked_dirs=self.host.masked_dirs,
            extra_entries=self.host.extra_entries,
            box_source=str(self.box.path),
            box_writable=self.writable_box,
            launcher_source=self.host.launcher_path,
            tmp_size_mb=self.host.tmp_size_mb,
            env=sandbox_env(),
        )
        return [
            *identity_prefix(self.host.setpriv_path, self._lease),
            *build_bwrap_argv(layout, block_fd=block_fd, info_fd=info_fd, seccomp_fd=seccomp_fd),
        ]

    def _read_child_pid(self, info_fd: int) -> int:
        """bwrap reports its sandboxed child's host pid once the namespaces exist (or dies trying)."""
        deadline_s = time.monotonic() + self.host.start_timeout_s
        data = b""
        try:
            while b"}" not in data:
                ready, _, _ = select.select([info_fd], [], [], max(0.0, deadline_s - time.monotonic()))
                chunk = os.read(info_fd, 4096) if ready else b""
                if not chunk:
                    raise BackendUnavailableError(f"the sandbox did not start: {self._startup_error()}")
                data += chunk
        finally:
            os.close(info_fd)
        return int(json.loads(data)["child-pid"])

    def _startup_error(self) -> str:
        if self._monitor is None or self._monitor.poll() is None:
            return f"no answer from bubblewrap within {self.host.start_timeout_s:g} s"
        assert self._pipes is not None  # noqa: S101
        error = os.read(self._pipes.stdout if self._pipes.stderr is None else self._pipes.stderr, 4096)
        return error.decode("utf-8", errors="replace").strip() or f"exit code {self._monitor.returncode}"

    def alive(self) -> bool:
        """Still waiting for its task (a sandbox killed while idle is discarded, never run)."""
        return self._monitor is not None and self._monitor.poll() is None and self._block_fd is not None

    def run(
        self,
        launch: Launch,
        limits: PhaseLimits,
        *,
        stdin: bytes = b"",
        cancel: threading.Event | None = None,
    ) -> ProcessReport:
        """Run `launch` once under `limits`; the report's every figure is the kernel's or our clock's."""
        assert self._cgroup is not None  # noqa: S101 - set by the constructor
        assert self._monitor is not None  # noqa: S101
        assert self._pipes is not None  # noqa: S101
        if not self.alive():
            raise BackendUnavailableError("the sandbox ended before its task arrived")
        self.box.write_file(
            LAUNCH_FILE,
            launch_file(launch.argv, launch.env, _launch_limits(limits), merge_stderr=launch.merge_stderr),
        )
        self._cgroup.set_limits(
            memory_limit_mb=limits.memory_limit_mb + self.host.overhead_memory_mb,
            max_pids=limits.max_processes + self.host.overhead_pids,
        )
        cpu_before_ns = self._cgroup.cpu_time_ns()
        self._cgroup.reset_peak()
        stdout, stderr = Capture(limits.output_limit_bytes), Capture(limits.output_limit_bytes)
        started_s = time.monotonic()
        self._unblock()
        outcome = pump(
            self._monitor,
            self._pipes,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            deadline_s=started_s + limits.timeout_s,
            cancel=cancel,
            # The namespace's init dies with the monitor and takes every straggler with it: one kill is a
            # second guarantee, and the pipes' end of file is what the loop waits for.
            on_exit=self._cgroup.signal_kill,
            on_stop=self._cgroup.kill_all,
        )
        return process_report(
            returncode=self._monitor.returncode,
            stopped=outcome.timed_out or outcome.cancelled,
            wall_time_s=(outcome.exited_at_s or time.monotonic()) - started_s,
            cpu_time_s=max(0, self._cgroup.cpu_time_ns() - cpu_before_ns) / 1e9,
            memory_kb=self._cgroup.peak_memory_kb(),
            oom_killed=self._cgroup.oom_kills() > 0,
            stdout=stdout,
            stderr=stderr,
        )

    def _unblock(self) -> None:
        assert self._block_fd is not None  # noqa: S101
        os.write(self._block_fd, b"x")
        os.close(self._block_fd)
        self._block_fd = None

    def kill(self) -> None:
        """Kill whatever of the sandbox still runs (cheap when its run already ended)."""
        if self._cgroup is not None and self._monitor is not None and self._monitor.poll() is None:
            self._cgroup.kill_all()

    def close(self) -> None:
        """Kill whatever is left, then remove the cgroup, the box and the uid lease. Idempotent."""
        if self._cgroup is not None:
            self._cgroup.kill_all()
        if self._monitor is not None:
            self._monitor.wait()
        if self._block_fd is not None:
            os.close(self._block_fd)
            self._block_fd = None
        if self._pipes is not None:
            self._pipes.close()
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None
        self.box.remove()
        if self._lease is not None:
            self._lease.release()
            self._lease = None


def _launch_limits(limits: PhaseLimits) -> LaunchLimits:
    return LaunchLimits(
        cpu_time_s=math.ceil(limits.timeout_s) + 1,
        file_size_bytes=limits.file_size_bytes,
        open_files=OPEN_FILES_LIMIT,
        address_space_bytes=limits.address_space_bytes,
    )
