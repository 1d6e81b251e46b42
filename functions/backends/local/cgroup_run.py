"""One sandbox's cgroup: its limits, the figures the kernel keeps for it, and killing what is in it.

cgroup v1 has one directory per controller (memory, pids, and cpuacct when mounted), v2 exactly one. The
figures cover every process of the sandbox, reaped or not: peak memory since the last `reset_peak`, CPU time,
and the OOM-kill counter, the only evidence of a memory-limit kill.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_KILL_ROUNDS = 200
# Exiting tasks leave the cgroup a moment after SIGKILL: look again soon, then less and less often.
_KILL_FIRST_PAUSE_S = 0.0002
_KILL_MAX_PAUSE_S = 0.005
_RMDIR_ATTEMPTS = 50
V2 = 2


def write_value(path: Path, value: str) -> None:
    path.write_text(value, encoding="ascii")


def read_counter(path: Path, key: str) -> int:
    """The value of `key` in a flat-keyed file like memory.events or cpu.stat (0 if absent)."""
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def read_int(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text(encoding="ascii").strip())
    return 0


def pids_in(procs_file: Path) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(line) for line in procs_file.read_text(encoding="ascii").split()]
    return []


@dataclass(frozen=True, slots=True)
class RunCgroup:
    """`dirs[0]` holds memory (and on v2 everything); v1 adds pids and optionally cpuacct."""

    version: int
    dirs: tuple[Path, ...]
    cpu_dir: Path | None = None  # v1's cpuacct directory (also in `dirs`); None on v2 or when absent

    @property
    def procs_files(self) -> tuple[Path, ...]:
        return tuple(directory / "cgroup.procs" for directory in self.dirs)

    @property
    def _memory_dir(self) -> Path:
        return self.dirs[0]

    def adopt(self, pid: int) -> None:
        """Move process `pid` (its threads too) into every hierarchy of this cgroup."""
        for procs in self.procs_files:
            write_value(procs, str(pid))

    def set_limits(self, *, memory_limit_mb: int, max_pids: int) -> None:
        """Memory (no swap) and process limits; may be changed while the sandbox waits for its task."""
        memory_bytes = str(memory_limit_mb * 1024 * 1024)
        if self.version == V2:
            write_value(self._memory_dir / "memory.max", memory_bytes)
            if (self._memory_dir / "memory.swap.max").exists():
                write_value(self._memory_dir / "memory.swap.max", "0")
            write_value(self._memory_dir / "pids.max", str(max_pids))
            return
        # v1 wants memsw >= memory at every step: raise memsw first when growing, lower it last when shrinking.
        memsw = self._memory_dir / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            with contextlib.suppress(OSError):
                write_value(memsw, memory_bytes)
        write_value(self._memory_dir / "memory.limit_in_bytes", memory_bytes)
        if memsw.exists():
            write_value(memsw, memory_bytes)  # equal to the memory limit: no swap at all
        with contextlib.suppress(OSError):
            write_value(self._memory_dir / "memory.swappiness", "0")
        write_value(self.dirs[1] / "pids.max", str(max_pids))

    def reset_peak(self) -> None:
        """Start the peak-memory reading from now (v1; v2 kernels before 6.12 cannot, and keep the peak)."""
        name = "memory.peak" if self.version == V2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError):
            write_value(self._memory_dir / name, "0")

    def peak_memory_kb(self) -> int:
        name = "memory.peak" if self.version == V2 else "memory.max_usage_in_bytes"
        return read_int(self._memory_dir / name) // 1024

    def cpu_time_ns(self) -> int:
        if self.version == V2:
            return read_counter(self._memory_dir / "cpu.stat", "usage_usec") * 1000
        return 0 if self.cpu_dir is None else read_int(self.cpu_dir / "cpuacct.usage")

    def oom_kills(self) -> int:
        if self.version == V2:
            return read_counter(self._memory_dir / "memory.events", "oom_kill")
        return read_counter(self._memory_dir / "memory.oom_control", "oom_kill")

    def pids(self) -> set[int]:
        return {pid for procs in self.procs_files for pid in pids_in(procs)}

    def signal_kill(self) -> bool:
        """SIGKILL every process in the cgroup once, without waiting for the exits; False if none was left."""
        kill_file = self._memory_dir / "cgroup.kill"
        if self.version == V2 and kill_file.exists():
            with contextlib.suppress(OSError):
                write_value(kill_file, "1")
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return bool(pids)

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup until none is left (the pids limit bounds any fork race)."""
        pause_s = _KILL_FIRST_PAUSE_S
        for _ in range(_KILL_ROUNDS):
            if not self.signal_kill():
                return
            time.sleep(pause_s)  # let the kernel finish the exits before the next look
            pause_s = min(pause_s * 2, _KILL_MAX_PAUSE_S)
        logger.error("processes survive in cgroup %s after %d kill rounds", self.dirs, _KILL_ROUNDS)

    def remove(self) -> None:
        for directory in self.dirs:
            for _ in range(_RMDIR_ATTEMPTS):
                if try_rmdir(directory):
                    break
                time.sleep(_KILL_MAX_PAUSE_S)  # exiting tasks leave the cgroup a moment after SIGKILL
            else:
                logger.warning("cgroup %s is still busy; left behind", directory)


def try_rmdir(directory: Path) -> bool:
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
