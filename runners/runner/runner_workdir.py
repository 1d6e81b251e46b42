"""The container's writable places: the program's files in /box, scratch dirs emptied between cases.

Standard library only, and none of tempfile/shutil/pathlib (each costs start-up time on every request).
Every walk is fd-relative and never follows a symlink, so a link the program left cannot steer a removal
outside the dir being emptied.
"""

# pathlib costs ~2 ms of start-up per request; os and os.path do the same job here.
# ruff: noqa: PTH101, PTH118

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping

PROGRAM_DIR = "/box"  # functions/core/protocol.py PROGRAM_DIR
SCRATCH_DIR = "/tmp"  # noqa: S108 - the container's own emptyDir, the program's working directory
# Where a case could leave state for the next: its working directory and the pod's shared memory.
SCRATCH_DIRS = (SCRATCH_DIR, "/dev/shm", "/dev/mqueue")  # noqa: S108
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
PRIVATE_DIR_MODE = 0o700


def child_env(task_env: Mapping[str, str]) -> dict[str, str]:
    """The fixed environment plus the task's variables: never the runner's own, which holds the task."""
    env = {
        "PATH": CHILD_PATH,
        "HOME": SCRATCH_DIR,
        "TMPDIR": SCRATCH_DIR,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    env.update(task_env)
    return env


def empty_dir(path: str) -> None:
    """Remove everything inside `path` (which stays); a missing dir is already empty."""
    try:
        _clear_directory(path, None)
    except (OSError, RecursionError):
        return


def write_new_file(directory: str, name: str, data: bytes, mode: int) -> None:
    """Write `directory/name`, replacing whatever is there (a file, a link, a tree) without following it."""
    path = os.path.join(directory, name)
    _remove_entry(path, None)
    fd = os.open(path, NEW_FILE_FLAGS, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.chmod(path, mode)  # the umask may have narrowed it


def _clear_directory(name: str, parent_fd: int | None) -> None:
    fd = os.open(name, DIRECTORY_FLAGS, dir_fd=parent_fd)
    try:
        with os.scandir(fd) as entries:
            names = [entry.name for entry in entries]
        for child in names:
            _remove_entry(child, fd)
    finally:
        os.close(fd)


def _remove_entry(name: str, parent_fd: int | None) -> None:
    """Remove one entry; a failure leaves it and goes on with the rest."""
    try:
        os.unlink(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno not in (errno.EISDIR, errno.EPERM):
            return
    else:
        return
    # A directory (unlink removes a link itself, never what it points at). Nothing of the program runs any
    # more, so it cannot be swapped for a link now: make it ours to empty, even if the program locked it.
    try:  # noqa: SIM105 - contextlib is one more import on every start
        os.chmod(name, PRIVATE_DIR_MODE, dir_fd=parent_fd)
    except OSError:
        pass
    try:
        _clear_directory(name, parent_fd)
        os.rmdir(name, dir_fd=parent_fd)
    except (OSError, RecursionError):
        return
