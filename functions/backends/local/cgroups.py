"""Per-run cgroups on cgroup v1 (memory + pids hierarchies) or v2 (unified), auto-detected.

Each run gets `<hierarchy>/<root_name>/<run name>` with a memory limit (swap off where the kernel
accounts it) and a pids limit. The sandbox's first process joins it before it execs bubblewrap
(`cgroup.procs` of every directory in `RunCgroup.procs_files`). After the run the backend reads the
OOM-kill counter and the peak memory, kills whatever is left and removes the directories.

A run directory is named `run-<pid of the creating process>-<random>`. A worker process killed mid-run
leaves its (empty) run directories behind; the next backend start removes them (`remove_stale`), but never
one whose creator is alive (it may be between mkdir and the sandbox joining) or that still has processes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

V1_CONTROLLERS = ("memory", "pids")
V2_CONTROLLERS = ("memory", "pids")
_KILL_ROUNDS = 200
_KILL_PAUSE_S = 0.005
_RMDIR_ATTEMPTS = 50
RUN_PREFIX = "run-"


@dataclass(frozen=True, slots=True)
class Hierarchies:
    """Where the controllers are mounted: a usable v2 mount, or one v1 mount per controller."""

    v2_mount: Path | None
    v1_mounts: dict[str, Path]


def parse_mounts(mounts_text: str) -> Hierarchies:
    """Read /proc/self/mounts text: cgroup2 mount points and the v1 mount of each controller."""
    v2_mount: Path | None = None
    v1_mounts: dict[str, Path] = {}
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 4:  # noqa: PLR2004 - device, mount point, type, options
            continue
        mount_point, fs_type, options = Path(fields[1]), fields[2], fields[3].split(",")
        if fs_type == "cgroup2" and v2_mount is None:
            v2_mount = mount_point
        elif fs_type == "cgroup":
            for controller in V1_CONTROLLERS:
                if controller in options:
                    v1_mounts.setdefault(controller, mount_point)
    return Hierarchies(v2_mount=v2_mount, v1_mounts=v1_mounts)


def _write(path: Path, value: str) -> None:
    path.write_text(value, encoding="ascii")


def _read_counter(path: Path, key: str) -> int:
    """The value of `key` in a flat-keyed file like memory.events or memory.oom_control (0 if absent)."""
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def _read_int(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text(encoding="ascii").strip())
    return 0


def _pids(procs_file: Path) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(line) for line in procs_file.read_text(encoding="ascii").split()]
    return []


@dataclass(frozen=True, slots=True)
class RunCgroup:
    """The cgroup directories of one run: v1 has one per controller, v2 exactly one."""

    version: int
    dirs: tuple[Path, ...]

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return tuple(directory / "cgroup.procs" for directory in self.dirs)

    @property
    def _memory_dir(self) -> Path:
        return self.dirs[0]

    def oom_kills(self) -> int:
        if self.version == 2:  # noqa: PLR2004
            return _read_counter(self._memory_dir / "memory.events", "oom_kill")
        return _read_counter(self._memory_dir / "memory.oom_control", "oom_kill")

    def peak_memory_kb(self) -> int:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"  # noqa: PLR2004
        return _read_int(self._memory_dir / name) // 1024

    def kill_all(self) -> None:
        """SIGKILL every process in the run until none is left (the pids limit bounds any fork race)."""
        kill_file = self._memory_dir / "cgroup.kill"
        if self.version == 2 and kill_file.exists():  # noqa: PLR2004
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        for _ in range(_KILL_ROUNDS):
            pids = {pid for procs in self.procs_files for pid in _pids(procs)}
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(_KILL_PAUSE_S)  # let the kernel finish the exits before the next look
        logger.error("processes survive in cgroup %s after %d kill rounds", self.dirs, _KILL_ROUNDS)

    def remove(self) -> None:
        for directory in self.dirs:
            for _ in range(_RMDIR_ATTEMPTS):
                if _try_rmdir(directory):
                    break
                # Exiting tasks leave the cgroup a moment after SIGKILL.
                time.sleep(_KILL_PAUSE_S)
            else:
                logger.warning("cgroup %s is still busy; left behind", directory)


def _try_rmdir(directory: Path) -> bool:
    """Remove one cgroup directory; False only while it is busy (EBUSY: it still has processes)."""
    try:
        directory.rmdir()
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return False
        logger.warning("cannot remove cgroup %s: %s", directory, exc)
    return True


def run_dir_name(owner_pid: int) -> str:
    return f"{RUN_PREFIX}{owner_pid}-{uuid.uuid4().hex}"


def _owner_pid(name: str) -> int | None:
    """The creating process of `run-<pid>-<hex>`; None for any other name (e.g. an older `run-<hex>`)."""
    pid, separator, _ = name.removeprefix(RUN_PREFIX).partition("-")
    return int(pid) if separator and pid.isdigit() else None


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _is_stale(directory: Path) -> bool:
    """A run directory nobody can still be using: its creator is gone and no process is in it."""
    if not directory.name.startswith(RUN_PREFIX) or not directory.is_dir():
        return False
    owner_pid = _owner_pid(directory.name)
    if owner_pid is not None and _is_alive(owner_pid):
        # A live run of another worker, possibly between mkdir and its sandbox joining (still empty).
        return False
    return not _pids(directory / "cgroup.procs")


class CgroupManager:
    """Creates per-run cgroups under `<hierarchy>/<root_name>` of the detected cgroup version."""

    def __init__(self, version: int, parents: tuple[Path, ...]) -> None:
        self.version = version
        self.parents = parents

    def create(self, *, memory_limit_mb: int, max_pids: int) -> RunCgroup:
        """A new run cgroup with its limits set; raises OSError when the host refuses."""
        name = run_dir_name(os.getpid())
        dirs = tuple(parent / name for parent in self.parents)
        run = RunCgroup(version=self.version, dirs=dirs)
        try:
            for directory in dirs:
                directory.mkdir()
            self._set_limits(run, memory_limit_mb * 1024 * 1024, max_pids)
        except OSError:
            run.remove()
            raise
        return run

    def remove_stale(self) -> int:
        """Remove run directories left by dead processes (a worker killed mid-run); how many went.

        A directory that gained a process meanwhile is busy (EBUSY) and stays: the kernel refuses to
        remove a cgroup with tasks, so a live run is never disturbed.
        """
        removed = 0
        for parent in self.parents:
            with contextlib.suppress(OSError):
                for directory in sorted(parent.iterdir()):
                    if _is_stale(directory) and _try_rmdir(directory) and not directory.exists():
                        removed += 1
        if removed:
            logger.info("removed %d stale run cgroup(s) under %s", removed, self.parents)
        return removed

    def _set_limits(self, run: RunCgroup, memory_bytes: int, max_pids: int) -> None:
        if self.version == 2:  # noqa: PLR2004
            directory = run.dirs[0]
            _write(directory / "memory.max", str(memory_bytes))
            if (directory / "memory.swap.max").exists():
                _write(directory / "memory.swap.max", "0")
            _write(directory / "pids.max", str(max_pids))
            return
        memory_dir, pids_dir = run.dirs
        _write(memory_dir / "memory.limit_in_bytes", str(memory_bytes))
        # memsw = memory + swap; equal to the memory limit means no swap at all.
        if (memory_dir / "memory.memsw.limit_in_bytes").exists():
            _write(memory_dir / "memory.memsw.limit_in_bytes", str(memory_bytes))
        with contextlib.suppress(OSError):
            _write(memory_dir / "memory.swappiness", "0")
        _write(pids_dir / "pids.max", str(max_pids))


def _v2_controllers(mount: Path) -> set[str]:
    with contextlib.suppress(OSError):
        return set((mount / "cgroup.controllers").read_text(encoding="ascii").split())
    return set()


def _prepare_v2(mount: Path, root_name: str) -> CgroupManager:
    parent = mount / root_name
    parent.mkdir(exist_ok=True)
    wanted = " ".join(f"+{controller}" for controller in V2_CONTROLLERS)
    # Children see a controller only when every ancestor enables it for its subtree.
    for directory in (mount, parent):
        enabled = set((directory / "cgroup.subtree_control").read_text(encoding="ascii").split())
        if not set(V2_CONTROLLERS) <= enabled:
            _write(directory / "cgroup.subtree_control", wanted)
    return CgroupManager(2, (parent,))


def _prepare_v1(mounts: dict[str, Path], root_name: str) -> CgroupManager:
    parents = tuple(mounts[controller] / root_name for controller in V1_CONTROLLERS)
    for parent in parents:
        parent.mkdir(exist_ok=True)
    return CgroupManager(1, parents)


def detect_cgroups(root_name: str, mounts_text: str | None = None) -> CgroupManager | None:
    """v2 when its mount offers memory and pids, else v1 when both are mounted, else None.

    None means the host gives us no cgroups (an unprivileged process on a v2 host without a delegated
    subtree): the sandbox then relies on the runner's rlimits only.
    """
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/self/mounts").read_text(encoding="utf-8")
        except OSError:
            return None
    manager = _prepare(parse_mounts(mounts_text), root_name)
    if manager is not None:
        manager.remove_stale()
    return manager


def _prepare(hierarchies: Hierarchies, root_name: str) -> CgroupManager | None:
    try:
        if hierarchies.v2_mount is not None and set(V2_CONTROLLERS) <= _v2_controllers(hierarchies.v2_mount):
            return _prepare_v2(hierarchies.v2_mount, root_name)
        if set(V1_CONTROLLERS) <= hierarchies.v1_mounts.keys():
            return _prepare_v1(hierarchies.v1_mounts, root_name)
    except OSError as exc:
        logger.warning("cgroups unavailable (%s); the sandbox falls back to rlimits only", exc)
        return None
    logger.warning("no cgroup hierarchy with memory and pids controllers; the sandbox uses rlimits only")
    return None
