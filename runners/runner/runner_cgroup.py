"""The container's memory cgroup, as the runner sees it: the kernel's OOM-kill counter and peak memory.

Standard library only. In a pod /sys/fs/cgroup is the container's own cgroup, mounted read-only: its OOM-kill
counter (cgroup v2 memory.events, or v1 memory.oom_control) is the kernel's evidence that a case was killed
for memory, whoever the victim was. Its peak (v2 memory.peak) is a case's figure only when it can be reset
for this reader (Linux >= 6.12 resets it per open file); otherwise None, and the runner reports the largest
`wait4` ru_maxrss instead.
"""

# pathlib costs ~2 ms of start-up per request; os and os.path do the same job here.
# ruff: noqa: PTH110

from __future__ import annotations

import os

V2_EVENTS = "/sys/fs/cgroup/memory.events"
V1_OOM_CONTROL = "/sys/fs/cgroup/memory/memory.oom_control"
V2_PEAK = "/sys/fs/cgroup/memory.peak"
OOM_KILL_KEY = b"oom_kill"


class ContainerMemory:
    __slots__ = ("events_path", "peak_fd")

    def __init__(self) -> None:
        self.events_path = next((path for path in (V2_EVENTS, V1_OOM_CONTROL) if os.path.exists(path)), None)
        try:
            self.peak_fd: int | None = os.open(V2_PEAK, os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # no cgroup v2 here, or (as in a pod) mounted read-only
            self.peak_fd = None

    def oom_kills(self) -> int | None:
        if self.events_path is None:
            return None
        try:
            with open(self.events_path, "rb") as events:  # noqa: PTH123 - pathlib costs start-up time
                for line in events:
                    key, _, value = line.partition(b" ")
                    if key == OOM_KILL_KEY:
                        return int(value)
        except (OSError, ValueError):
            return None
        return None

    def reset_peak(self) -> bool:
        """Start this reader's peak from now; False (and never again tried) when the kernel cannot."""
        if self.peak_fd is None:
            return False
        try:
            os.write(self.peak_fd, b"reset\n")
        except OSError:
            os.close(self.peak_fd)
            self.peak_fd = None
            return False
        return True

    def peak_kb(self) -> int | None:
        if self.peak_fd is None:
            return None
        try:
            return int(os.pread(self.peak_fd, 64, 0)) // 1024
        except (OSError, ValueError):
            return None
