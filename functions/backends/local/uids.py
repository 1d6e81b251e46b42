"""A distinct host uid for every live sandbox, so concurrent runs share no per-user kernel state.

Keyrings, the pipe-buffer quota, inotify limits and process counts are kept per user by the kernel: two
sandboxes backed by the same host uid could reach each other through them. Each sandbox leases one uid of
`[base, base + count)` for its whole life; leases are `flock`s on one file per uid in one directory per host,
so they are exclusive across every process of every instance of the service and vanish with a process that
dies.

Only root can switch to other uids: an unprivileged service runs every sandbox as itself (the lease is then
a no-op with the service's own uid).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from functions.backends.local.boxes import make_private_dir
from functions.core.errors import CapacityExhaustedError


@dataclass(frozen=True, slots=True)
class UidLease:
    uid: int
    gid: int
    _fd: int | None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor drops its flock


class UidPool:
    """Hands out uids of a fixed range, one live sandbox per uid (the gid equals the uid)."""

    def __init__(self, *, base: int, count: int, lock_dir: Path) -> None:
        if count < 1:
            raise ValueError("the sandbox uid range needs at least one uid")
        self.base = base
        self.count = count
        self.lock_dir = lock_dir
        self.switches_uid = os.geteuid() == 0
        self._lock = threading.Lock()
        if self.switches_uid:
            make_private_dir(lock_dir, 0o700)

    def lease(self) -> UidLease:
        """A free uid, or CapacityExhaustedError when every uid of the range backs a live sandbox."""
        if not self.switches_uid:
            return UidLease(uid=os.geteuid(), gid=os.getegid(), _fd=None)
        offsets = list(range(self.count))
        random.shuffle(offsets)  # fewer collisions between processes that lease at the same moment
        with self._lock:
            for offset in offsets:
                uid = self.base + offset
                fd = self._try_lock(uid)
                if fd is not None:
                    kill_leftovers(uid)
                    return UidLease(uid=uid, gid=uid, _fd=fd)
        raise CapacityExhaustedError(
            f"all {self.count} sandbox uids are in use; retry shortly", retry_after_s=1
        )

    def _try_lock(self, uid: int) -> int | None:
        path = self.lock_dir / f"{uid}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd


def kill_leftovers(uid: int) -> int:
    """SIGKILL every process still running as `uid`; how many there were.

    A free lease means no live service holds the uid, so anything still running as it was left behind (a
    service killed while it started a sandbox can leave bubblewrap's monitor behind). A new sandbox must not
    share its uid, and so its per-user kernel state, with such a leftover.
    """
    killed = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # the process ended meanwhile
            if entry.stat(follow_symlinks=False).st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed
