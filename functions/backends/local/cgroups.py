"""Per-sandbox cgroups on cgroup v1 (memory, pids and cpuacct hierarchies) or v2 (unified), auto-detected.

Each sandbox gets `<hierarchy>/<root_name>/<run name>`; `cgroup_run.RunCgroup` sets its limits, reads its
figures and empties it. The sandbox's first process joins it before it execs bubblewrap, so every process
of the sandbox is accounted from birth.

A run directory is named `run-<pid of the creating process>-<random>`. A worker process killed mid-run
leaves its (empty) run directories behind; the next backend start removes them (`remove_stale`), but never
one whose creator is alive (it may be between mkdir and the sandbox joining) or that still has processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from functions.backends.local.cgroup_run import V2, RunCgroup, pids_in, try_rmdir, write_value
from functions.backends.local.liveness import is_alive

logger = logging.getLogger(__name__)

# v1: memory and pids are required; cpuacct (CPU time) is used when mounted.
V1_REQUIRED = ("memory", "pids")
V1_CPU = "cpuacct"
# v2 reports CPU time in every cgroup's cpu.stat, with or without the cpu controller.
V2_CONTROLLERS = ("memory", "pids")
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
            for controller in (*V1_REQUIRED, V1_CPU):
                if controller in options:
                    v1_mounts.setdefault(controller, mount_point)
    return Hierarchies(v2_mount=v2_mount, v1_mounts=v1_mounts)


def run_dir_name(owner_pid: int) -> str:
    return f"{RUN_PREFIX}{owner_pid}-{uuid.uuid4().hex}"


def _owner_pid(name: str) -> int | None:
    """The creating process of `run-<pid>-<hex>`; None for any other name (e.g. an older `run-<hex>`)."""
    pid, separator, _ = name.removeprefix(RUN_PREFIX).partition("-")
    return int(pid) if separator and pid.isdigit() else None


def _is_stale(directory: Path) -> bool:
    """A run directory nobody can still be using: its creator is gone and no process is in it."""
    if not directory.name.startswith(RUN_PREFIX) or not directory.is_dir():
        return False
    owner_pid = _owner_pid(directory.name)
    if owner_pid is not None and is_alive(owner_pid):
        # A live run of another worker, possibly between mkdir and its sandbox joining (still empty).
        return False
    return not pids_in(directory / "cgroup.procs")


class CgroupManager:
    """Creates per-sandbox cgroups under `<hierarchy>/<root_name>` of the detected cgroup version.

    `parents` lists the memory hierarchy first, then pids (v1), then cpuacct when `has_cpu_dir`.
    """

    def __init__(self, version: int, parents: tuple[Path, ...], *, has_cpu_dir: bool = False) -> None:
        self.version = version
        self.parents = parents
        self.has_cpu_dir = has_cpu_dir

    def create(self, *, memory_limit_mb: int, max_pids: int) -> RunCgroup:
        """A new cgroup with its limits set; raises OSError when the host refuses."""
        name = run_dir_name(os.getpid())
        dirs = tuple(parent / name for parent in self.parents)
        run = RunCgroup(version=self.version, dirs=dirs, cpu_dir=dirs[-1] if self.has_cpu_dir else None)
        try:
            for directory in dirs:
                directory.mkdir()
            run.set_limits(memory_limit_mb=memory_limit_mb, max_pids=max_pids)
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
                    if _is_stale(directory) and try_rmdir(directory) and not directory.exists():
                        removed += 1
        if removed:
            logger.info("removed %d stale run cgroup(s) under %s", removed, self.parents)
        return removed


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
            write_value(directory / "cgroup.subtree_control", wanted)
    return CgroupManager(V2, (parent,))


def _prepare_v1(mounts: dict[str, Path], root_name: str) -> CgroupManager:
    controllers = [*V1_REQUIRED, *([V1_CPU] if V1_CPU in mounts else [])]
    parents = tuple(mounts[controller] / root_name for controller in controllers)
    for parent in parents:
        parent.mkdir(exist_ok=True)
    if V1_CPU not in mounts:
        logger.warning("no cpuacct hierarchy: CPU times will read 0")
    return CgroupManager(1, parents, has_cpu_dir=V1_CPU in mounts)


def detect_cgroups(root_name: str, mounts_text: str | None = None) -> CgroupManager | None:
    """v2 when its mount offers memory and pids, else v1 when both are mounted, else None.

    None means the host gives us no cgroups (an unprivileged process on a v2 host without a delegated
    subtree): the backend then refuses to start, since memory and figures depend on them.
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
        if set(V1_REQUIRED) <= hierarchies.v1_mounts.keys():
            return _prepare_v1(hierarchies.v1_mounts, root_name)
    except OSError as exc:
        logger.warning("cgroups unavailable (%s)", exc)
        return None
    logger.warning("no cgroup hierarchy with memory and pids controllers")
    return None
