"""cgroup detection and the per-run cgroup files, against fake hierarchies in a temp dir."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.backends.local.cgroup_run import RunCgroup
from functions.backends.local.cgroups import CgroupManager, detect_cgroups, parse_mounts

V1_MOUNTS = """\
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
V2_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"


@pytest.mark.parametrize(
    ("text", "v2_mount", "v1_controllers"),
    [
        (V1_MOUNTS, Path("/sys/fs/cgroup/unified"), {"memory", "pids"}),
        (V2_MOUNTS, Path("/sys/fs/cgroup"), set()),
        ("proc /proc proc rw 0 0\n", None, set()),
        ("", None, set()),
    ],
    ids=["v1-hybrid", "v2-unified", "none", "empty"],
)
def test_parse_mounts(text: str, v2_mount: Path | None, v1_controllers: set[str]) -> None:
    hierarchies = parse_mounts(text)
    assert hierarchies.v2_mount == v2_mount
    assert set(hierarchies.v1_mounts) == v1_controllers


def test_detect_prefers_v1_when_v2_has_no_memory_controller(tmp_path: Path) -> None:
    # Given a hybrid host whose unified mount offers no controllers
    for name in ("memory", "pids", "unified"):
        (tmp_path / name).mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    mounts = (
        f"cgroup {tmp_path}/memory cgroup rw,memory 0 0\n"
        f"cgroup {tmp_path}/pids cgroup rw,pids 0 0\n"
        f"cgroup2 {tmp_path}/unified cgroup2 rw 0 0\n"
    )
    # When detecting
    manager = detect_cgroups("code-exec", mounts)
    # Then v1 is chosen with one parent per controller, created
    assert manager is not None
    assert manager.version == 1
    assert manager.parents == (tmp_path / "memory" / "code-exec", tmp_path / "pids" / "code-exec")
    assert all(parent.is_dir() for parent in manager.parents)


def test_detect_v2_enables_controllers_for_the_subtree(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids io\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    (tmp_path / "code-exec").mkdir()
    (tmp_path / "code-exec" / "cgroup.subtree_control").write_text("")
    manager = detect_cgroups("code-exec", f"cgroup2 {tmp_path} cgroup2 rw 0 0\n")
    assert manager is not None
    assert manager.version == 2
    assert (tmp_path / "code-exec" / "cgroup.subtree_control").read_text() == "+memory +pids"


@pytest.mark.parametrize(
    "mounts", ["", "cgroup /x cgroup rw,memory 0 0\n"], ids=["no-cgroups", "v1-without-pids"]
)
def test_detect_returns_none_without_usable_hierarchy(mounts: str) -> None:
    assert detect_cgroups("code-exec", mounts) is None


def test_detect_returns_none_when_the_host_refuses(tmp_path: Path) -> None:
    # Given a v2 mount whose root cannot be written (no such files: an unprivileged host)
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    # When / Then: no exception, just no cgroups
    assert detect_cgroups("code-exec", f"cgroup2 {tmp_path} cgroup2 rw 0 0\n") is None


def test_v1_create_writes_limits_and_swap_off(tmp_path: Path) -> None:
    memory, pids = tmp_path / "memory", tmp_path / "pids"
    memory.mkdir()
    pids.mkdir()
    manager = CgroupManager(1, (memory, pids))
    run = manager.create(memory_limit_mb=64, max_pids=80)
    assert run.version == 1
    assert (run.dirs[0] / "memory.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert (run.dirs[1] / "pids.max").read_text() == "80"
    assert run.procs_files == (run.dirs[0] / "cgroup.procs", run.dirs[1] / "cgroup.procs")


def test_v2_create_writes_limits(tmp_path: Path) -> None:
    run = CgroupManager(2, (tmp_path,)).create(memory_limit_mb=32, max_pids=10)
    assert (run.dirs[0] / "memory.max").read_text() == str(32 * 1024 * 1024)
    assert (run.dirs[0] / "pids.max").read_text() == "10"


@pytest.mark.parametrize(
    ("version", "files", "oom_kills", "peak_kb"),
    [
        (2, {"memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", "memory.peak": "2048\n"}, 1, 2),
        (2, {"memory.events": "oom_kill 0\n"}, 0, 0),
        (
            1,
            {
                "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                "memory.max_usage_in_bytes": "1048576",
            },
            2,
            1024,
        ),
        (1, {}, 0, 0),
    ],
    ids=["v2-oom", "v2-clean", "v1-oom", "v1-no-files"],
)
def test_counters(tmp_path: Path, version: int, files: dict[str, str], oom_kills: int, peak_kb: int) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    run = RunCgroup(version=version, dirs=(tmp_path, tmp_path))
    assert run.oom_kills() == oom_kills
    assert run.peak_memory_kb() == peak_kb


def test_kill_all_and_remove_on_empty_cgroup(tmp_path: Path) -> None:
    # Given an empty run directory (a fake cgroup.procs cannot be rmdir'ed, so keep it absent)
    directory = tmp_path / "run"
    directory.mkdir()
    run = RunCgroup(version=2, dirs=(directory,))
    # When
    run.kill_all()
    run.remove()
    # Then
    assert not directory.exists()


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_remove_stale_keeps_live_runs_and_foreign_dirs(tmp_path: Path, dead_pid: int) -> None:
    # Given v1-style parents holding, each: a dead worker's empty run, an older unowned empty run, a run
    # whose creator is alive (between mkdir and join: still empty), a dead worker's run that still has a
    # process, and a directory that is not a run at all
    parents = (tmp_path / "memory" / "code-exec", tmp_path / "pids" / "code-exec")
    for parent in parents:
        for name in (f"run-{dead_pid}-aa", "run-0123abcd", f"run-{os.getpid()}-bb", "keep-me"):
            (parent / name).mkdir(parents=True)
        (parent / f"run-{dead_pid}-cc").mkdir()
        (parent / f"run-{dead_pid}-cc" / "cgroup.procs").write_text(f"{os.getpid()}\n")

    # When a backend starts and sweeps
    removed = CgroupManager(1, parents).remove_stale()

    # Then only the runs nobody can be using are gone, in every hierarchy
    assert removed == 4
    for parent in parents:
        remaining = {child.name for child in parent.iterdir()}
        assert remaining == {"keep-me", f"run-{dead_pid}-cc", f"run-{os.getpid()}-bb"}


def test_remove_stale_leaves_a_cgroup_that_became_busy(
    tmp_path: Path, dead_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stale-looking run that a process joins right before the rmdir (the kernel says EBUSY)
    busy = tmp_path / f"run-{dead_pid}-aa"
    busy.mkdir()
    real_rmdir = Path.rmdir

    def rmdir(self: Path) -> None:
        if self == busy:
            raise OSError(errno.EBUSY, "Device or resource busy", str(self))
        real_rmdir(self)

    monkeypatch.setattr(Path, "rmdir", rmdir)

    # When sweeping, Then nothing is removed and nothing is raised
    assert CgroupManager(2, (tmp_path,)).remove_stale() == 0
    assert busy.is_dir()


def test_detect_sweeps_stale_runs(tmp_path: Path, dead_pid: int) -> None:
    # Given a v2 host whose cgroup root holds a run left by a killed worker
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    (tmp_path / "code-exec").mkdir()
    (tmp_path / "code-exec" / "cgroup.subtree_control").write_text("memory pids\n")
    stale = tmp_path / "code-exec" / f"run-{dead_pid}-aa"
    stale.mkdir()

    # When the backend starts
    assert detect_cgroups("code-exec", f"cgroup2 {tmp_path} cgroup2 rw 0 0\n") is not None

    # Then the leftover is gone
    assert not stale.exists()


def test_new_runs_are_named_after_their_creator(tmp_path: Path) -> None:
    run = CgroupManager(2, (tmp_path,)).create(memory_limit_mb=32, max_pids=10)
    assert run.dirs[0].name.startswith(f"run-{os.getpid()}-")


# Creates a run cgroup like a worker would, says where, then waits to be killed mid-run.
_WORKER = """
import sys
from pathlib import Path
from functions.backends.local.cgroups import CgroupManager
manager = CgroupManager(int(sys.argv[1]), tuple(Path(p) for p in sys.argv[2:]))
run = manager.create(memory_limit_mb=32, max_pids=10)
print(*run.dirs, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def real_cgroups() -> Iterator[CgroupManager]:
    """A manager on this host's real cgroups under a fresh root (removed after); skipped without them."""
    manager = detect_cgroups(f"code-exec-test-{uuid.uuid4().hex[:8]}")
    if manager is None:
        pytest.skip("this host gives no memory+pids cgroups to this process")
    yield manager
    for parent in manager.parents:
        for child in parent.iterdir():
            if child.is_dir():
                RunCgroup(version=manager.version, dirs=(child,)).kill_all()
                child.rmdir()
        parent.rmdir()


def test_real_cgroup_left_by_a_killed_worker_is_swept(real_cgroups: CgroupManager) -> None:
    # Given a worker process killed while its run cgroup existed
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(real_cgroups.version), *map(str, real_cgroups.parents)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    stale_dirs = [Path(name) for name in worker.stdout.readline().split()]
    worker.kill()
    worker.wait()
    assert stale_dirs
    assert all(directory.is_dir() for directory in stale_dirs)
    # ... and a live run of another worker: a process inside its cgroup
    live = real_cgroups.create(memory_limit_mb=32, max_pids=10)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        for procs in live.procs_files:
            procs.write_text(str(sleeper.pid))

        # When the next backend starts on the same root
        assert real_cgroups.remove_stale() == len(stale_dirs)

        # Then the leftover is gone and the live run is untouched
        assert not any(directory.exists() for directory in stale_dirs)
        assert all(directory.is_dir() for directory in live.dirs)
    finally:
        sleeper.kill()
        sleeper.wait()
    live.kill_all()
    live.remove()
