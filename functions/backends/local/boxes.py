"""Host directories behind each sandbox's /box: the program's files, placed by the backend, never by the program.

A run sandbox binds its box read-only and finds the program there (its source, or what the compiler made);
its files belong to the service and are hard links to the one copy the compile step produced, so a program
cannot change what a later run of the same binary executes. Only a compile sandbox gets a box it may write
(handed to the sandbox's uid); afterwards the backend copies out the regular files the compiler left,
refusing links, devices and anything too big or too many.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from functions.backends.local.liveness import is_alive

LAUNCH_FILE = ".launch"  # the sandbox's first command: `sh /box/.launch` execs the program
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK_BYTES = 1024 * 1024


class ArtifactError(Exception):
    """The compile step left something the backend refuses to run (too big, too many files)."""


@dataclass(frozen=True, slots=True)
class ArtifactLimits:
    max_files: int
    max_total_bytes: int


def make_private_dir(path: Path, mode: int) -> Path:
    """Create `path` (and parents) owned by us, refusing a symlink or someone else's directory there."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"{path} must be a directory owned by uid {os.geteuid()}")
    path.chmod(mode)
    return path


def link_files(source: Path, destination: Path) -> None:
    """Hard links in `destination` to every file of `source` (copies when another file system holds them).

    FileNotFoundError when `source` or one of its files is gone meanwhile.
    """
    for entry in os.scandir(source):
        target = destination / entry.name
        try:
            os.link(entry.path, target, follow_symlinks=False)
        except OSError:
            shutil.copy2(entry.path, target, follow_symlinks=False)


class Box:
    """One sandbox's /box on the host."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write_file(self, name: str, data: bytes, *, mode: int = 0o444) -> None:
        fd = os.open(self.path / name, _OPEN_NEW, mode)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        (self.path / name).chmod(mode)  # the umask may have narrowed it

    def hand_to(self, uid: int, gid: int) -> None:
        """Make the box the sandbox's own (a compile step writes its output here)."""
        os.chown(self.path, uid, gid)
        self.path.chmod(0o700)

    def collect(self, destination: Path, limits: ArtifactLimits) -> None:
        """Copy the regular files the compile step left into `destination`, read-only and ours."""
        make_private_dir(destination, 0o755)
        total_bytes = 0
        names = sorted(entry.name for entry in self.path.iterdir() if entry.name != LAUNCH_FILE)
        if len(names) > limits.max_files:
            raise ArtifactError(f"the compiler left {len(names)} files; at most {limits.max_files} are kept")
        for name in names:
            total_bytes += _copy_regular_file(self.path / name, destination / name, limits.max_total_bytes)
            if total_bytes > limits.max_total_bytes:
                raise ArtifactError(f"the compiler's output is larger than {limits.max_total_bytes} bytes")

    def remove(self) -> None:
        # rmtree walks by file descriptor and never follows a symlink a compile step may have left.
        shutil.rmtree(self.path, ignore_errors=True)


class BoxStore:
    """Creates boxes under one directory of the data dir (traversable, not listable, by sandbox uids).

    A box is named `<pid of the creating process>-<random>`: one left by a process that died (a worker
    killed mid-run) is removed when the next store opens, never one whose creator is alive.
    """

    def __init__(self, root: Path) -> None:
        self.root = make_private_dir(root, 0o711)
        self.remove_stale()

    def new_box(self) -> Box:
        path = self.root / f"{os.getpid()}-{uuid.uuid4().hex}"
        path.mkdir(mode=0o755)
        path.chmod(0o755)
        return Box(path)

    def remove_stale(self) -> int:
        removed = 0
        for path in self.root.iterdir():
            creator, _, _ = path.name.partition("-")
            if creator.isdigit() and not is_alive(int(creator)):
                Box(path).remove()
                removed += 1
        return removed


def _copy_regular_file(source: Path, target: Path, max_bytes: int) -> int:
    """Copy one file if it is a plain file; skip anything else. Returns the bytes copied."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return 0  # a symlink (ELOOP), a vanished file: not an artifact
    with contextlib.closing(os.fdopen(fd, "rb")) as reader:
        info = os.fstat(reader.fileno())
        if not stat.S_ISREG(info.st_mode):
            return 0
        if info.st_size > max_bytes:
            raise ArtifactError(f"{source.name} is larger than {max_bytes} bytes")
        mode = 0o555 if info.st_mode & stat.S_IXUSR else 0o444
        out_fd = os.open(target, _OPEN_NEW, mode)
        with os.fdopen(out_fd, "wb") as writer:
            copied = _copy_stream(reader.fileno(), writer.fileno(), max_bytes)
        target.chmod(mode)
        return copied


def _copy_stream(source_fd: int, target_fd: int, max_bytes: int) -> int:
    copied = 0
    while chunk := os.read(source_fd, _COPY_CHUNK_BYTES):
        copied += len(chunk)
        if copied > max_bytes:
            raise ArtifactError(f"an artifact is larger than {max_bytes} bytes")
        _write_all(target_fd, chunk)
    return copied


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
