"""Which dispatchers are alive: each holds an exclusive lock on its own file for as long as it runs.

The kernel drops a lock when its process dies, however it dies, so a free lock means a dead owner whose
executions may be taken over. Several servers may share one data dir: each resumes only the dead ones'.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from pathlib import Path


class OwnerLease:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self.owner = uuid.uuid4().hex
        self._fd: int | None = os.open(_lock_path(directory, self.owner), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def is_dead(self, owner: str) -> bool:
        """True when `owner` holds no lock any more (this lease's own owner is alive by definition)."""
        if owner == self.owner:
            return False
        path = _lock_path(self.directory, owner)
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            _lock_path(self.directory, self.owner).unlink()
        os.close(self._fd)
        self._fd = None


def _lock_path(directory: Path, owner: str) -> Path:
    if not owner.isalnum():
        raise ValueError(f"not an owner id: {owner!r}")
    return directory / f"{owner}.lock"
