"""The bubblewrap argv is deny-by-default: golden-ish checks on every flag that isolates."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.backends.local.bwrap import (
    HostEntry,
    SandboxLayout,
    host_entries,
    sandbox_env,
)
from functions.backends.local.bwrap import build_bwrap_argv as _build
from functions.core.protocol import PROGRAM_DIR

FDS = {"block_fd": 7, "info_fd": 8, "seccomp_fd": 9}


def _layout(**overrides: object) -> SandboxLayout:
    values: dict[str, object] = {
        "bwrap_path": "/usr/bin/bwrap",
        "system_entries": (HostEntry("/usr"), HostEntry("/lib", symlink_target="usr/lib")),
        "masked_dirs": ("/usr/local",),
        "extra_entries": (HostEntry("/usr/local/go"), HostEntry("/etc/ld.so.cache")),
        "box_source": "/data/boxes/abc",
        "box_writable": False,
        "launcher_source": "/srv/code-exec/build/sandbox-launch",
        "tmp_size_mb": 64,
        "env": sandbox_env(),
    }
    values.update(overrides)
    return SandboxLayout(**values)  # type: ignore[arg-type]


def build_bwrap_argv(layout: SandboxLayout) -> list[str]:
    return _build(layout, **FDS)


def _pairs(argv: list[str], flag: str, arity: int) -> list[tuple[str, ...]]:
    return [tuple(argv[i + 1 : i + 1 + arity]) for i, arg in enumerate(argv) if arg == flag]


@pytest.mark.parametrize(
    "flag",
    [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ],
    ids=lambda flag: flag.lstrip("-"),
)
def test_isolation_flag_present(flag: str) -> None:
    # Given a layout / When the argv is built
    argv = build_bwrap_argv(_layout())
    # Then every isolating flag is there, before the command separator
    assert flag in argv[: argv.index("--")]


@pytest.mark.parametrize(
    "flag", ["--share-net", "--bind", "--dev-bind", "--unshare-user-try"], ids=lambda flag: flag.lstrip("-")
)
def test_dangerous_flag_absent(flag: str) -> None:
    argv = build_bwrap_argv(_layout())
    assert flag not in argv[: argv.index("--")]


@pytest.mark.parametrize(
    ("writable", "bind", "cwd"), [(False, "--ro-bind", "/tmp"), (True, "--bind", PROGRAM_DIR)]
)
def test_the_box_is_writable_only_for_a_compile_step(writable: bool, bind: str, cwd: str) -> None:
    argv = build_bwrap_argv(_layout(box_writable=writable))
    assert ("/data/boxes/abc", PROGRAM_DIR) in _pairs(argv, bind, 2)
    assert _pairs(argv, "--chdir", 1) == [(cwd,)]


def test_the_sandbox_waits_for_its_task_under_its_filter() -> None:
    argv = build_bwrap_argv(_layout())
    assert _pairs(argv, "--block-fd", 1) == [("7",)]
    assert _pairs(argv, "--info-fd", 1) == [("8",)]
    assert _pairs(argv, "--seccomp", 1) == [("9",)]


def test_usr_local_is_hidden_except_what_a_language_names() -> None:
    argv = build_bwrap_argv(_layout())
    tmpfs_at = argv.index("/usr/local", argv.index("--tmpfs"))
    rebind_at = argv.index("/usr/local/go")
    assert argv[tmpfs_at - 1] == "--tmpfs"
    assert tmpfs_at < rebind_at < argv.index("/usr/local", rebind_at + 1)
    assert ("/usr/local",) in _pairs(argv, "--remount-ro", 1)


def test_clearenv_comes_before_every_setenv() -> None:
    argv = build_bwrap_argv(_layout())
    assert argv.index("--clearenv") < min(i for i, arg in enumerate(argv) if arg == "--setenv")


def test_environment_is_exactly_the_minimum_plus_the_callers() -> None:
    argv = build_bwrap_argv(_layout())
    names = {name for name, _ in _pairs(argv, "--setenv", 2)}
    assert names == {"PATH", "LANG", "LC_ALL", "TMPDIR", "HOME"}


def test_tmp_is_a_sized_world_writable_tmpfs() -> None:
    argv = build_bwrap_argv(_layout(tmp_size_mb=48))
    index = next(i for i, arg in enumerate(argv) if arg == "/tmp" and argv[i - 1] == "--tmpfs")
    assert argv[index - 3 : index - 1] == ["--size", str(48 * 1024 * 1024)]
    assert argv[index - 5 : index - 3] == ["--perms", "01777"]


def test_system_dirs_are_read_only_and_symlinks_recreated() -> None:
    argv = build_bwrap_argv(_layout())
    assert ("/usr", "/usr") in _pairs(argv, "--ro-bind", 2)
    assert ("usr/lib", "/lib") in _pairs(argv, "--symlink", 2)


def test_root_and_dev_are_remounted_read_only() -> None:
    argv = build_bwrap_argv(_layout())
    assert {("/",), ("/dev",)} <= set(_pairs(argv, "--remount-ro", 1))


def test_unprivileged_identity_and_hostname() -> None:
    argv = build_bwrap_argv(_layout())
    assert _pairs(argv, "--uid", 1) == [("65534",)]
    assert _pairs(argv, "--gid", 1) == [("65534",)]
    assert _pairs(argv, "--hostname", 1) == [("sandbox",)]


def test_command_is_the_launcher_reading_what_the_backend_writes() -> None:
    # Given a layout with the launcher binary / When the argv is built
    argv = build_bwrap_argv(_layout())
    # Then the launcher is bound read-only and is what runs, on the launch file in the box
    assert ("/srv/code-exec/build/sandbox-launch", "/launch") in _pairs(argv, "--ro-bind", 2)
    assert argv[argv.index("--") + 1 :] == ["/launch", f"{PROGRAM_DIR}/.launch"]


def test_host_entries_skip_missing_and_keep_symlinks(tmp_path: Path) -> None:
    base = tmp_path
    (base / "real").mkdir()
    (base / "link").symlink_to("real")
    entries = host_entries([str(base / "real"), str(base / "link"), str(base / "missing")])
    assert entries == (HostEntry(str(base / "real")), HostEntry(str(base / "link"), symlink_target="real"))
