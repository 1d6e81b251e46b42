"""The bubblewrap argv is deny-by-default: golden-ish checks on every flag that isolates."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.backends.local.bwrap import (
    SANDBOX_RUNNER_DIR,
    HostEntry,
    SandboxLayout,
    build_bwrap_argv,
    host_entries,
    sandbox_env,
)


def _layout(**overrides: object) -> SandboxLayout:
    values: dict[str, object] = {
        "bwrap_path": "/usr/bin/bwrap",
        "python_path": "/usr/bin/python3",
        "runner_dir": "/repo/runners/runner",
        "system_entries": (HostEntry("/usr"), HostEntry("/lib", symlink_target="usr/lib")),
        "tmp_size_mb": 64,
        "env": sandbox_env({"RUNNER_TASK_CHUNKS": "1"}),
    }
    values.update(overrides)
    return SandboxLayout(**values)  # type: ignore[arg-type]


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


def test_clearenv_comes_before_every_setenv() -> None:
    argv = build_bwrap_argv(_layout())
    assert argv.index("--clearenv") < min(i for i, arg in enumerate(argv) if arg == "--setenv")


def test_environment_is_exactly_the_minimum_plus_the_callers() -> None:
    argv = build_bwrap_argv(_layout())
    names = {name for name, _ in _pairs(argv, "--setenv", 2)}
    assert names == {"PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "RUNNER_TASK_CHUNKS"}


def test_tmp_is_a_sized_world_writable_tmpfs() -> None:
    argv = build_bwrap_argv(_layout(tmp_size_mb=48))
    index = next(i for i, arg in enumerate(argv) if arg == "/tmp" and argv[i - 1] == "--tmpfs")
    assert argv[index - 3 : index - 1] == ["--size", str(48 * 1024 * 1024)]
    assert argv[index - 5 : index - 3] == ["--perms", "01777"]


def test_system_dirs_are_read_only_and_symlinks_recreated() -> None:
    argv = build_bwrap_argv(_layout())
    assert ("/usr", "/usr") in _pairs(argv, "--ro-bind", 2)
    assert ("usr/lib", "/lib") in _pairs(argv, "--symlink", 2)
    assert ("/repo/runners/runner", SANDBOX_RUNNER_DIR) in _pairs(argv, "--ro-bind", 2)


def test_root_and_dev_are_remounted_read_only() -> None:
    argv = build_bwrap_argv(_layout())
    assert set(_pairs(argv, "--remount-ro", 1)) == {("/",), ("/dev",)}


def test_unprivileged_identity_and_hostname() -> None:
    argv = build_bwrap_argv(_layout())
    assert _pairs(argv, "--uid", 1) == [("65534",)]
    assert _pairs(argv, "--gid", 1) == [("65534",)]
    assert _pairs(argv, "--hostname", 1) == [("sandbox",)]


def test_command_runs_the_runner_with_the_configured_python() -> None:
    argv = build_bwrap_argv(_layout(python_path="/opt/py/bin/python3"))
    command = argv[argv.index("--") + 1 :]
    assert command[0] == "/opt/py/bin/python3"
    assert command[-1] == f"{SANDBOX_RUNNER_DIR}/runner.py"


def test_host_entries_skip_missing_and_keep_symlinks(tmp_path: Path) -> None:
    base = tmp_path
    (base / "real").mkdir()
    (base / "link").symlink_to("real")
    entries = host_entries([str(base / "real"), str(base / "link"), str(base / "missing")])
    assert entries == (HostEntry(str(base / "real")), HostEntry(str(base / "link"), symlink_target="real"))
