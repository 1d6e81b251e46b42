"""The sandbox's launcher (launch.c, built static) reading what launch.py writes: run here, outside a sandbox,
on commands that only print."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from functions.backends.local.launch import LAUNCH_FILE_UNUSABLE_EXIT, LaunchLimits, launch_file
from functions.settings import get_settings

LIMITS = LaunchLimits(cpu_time_s=5, file_size_bytes=1000, open_files=64)
HOST_ENV = {"PATH": "/usr/bin:/bin"}


@pytest.fixture(scope="module")
def launcher() -> Path:
    path = get_settings().local_launcher_path
    assert path.is_file(), f"{path}: build it with `make setup`"
    return path


def _launch(launcher: Path, tmp_path: Path, contents: bytes) -> subprocess.CompletedProcess[bytes]:
    spec = tmp_path / ".launch"
    spec.write_bytes(contents)
    return subprocess.run([str(launcher), str(spec)], capture_output=True, env=HOST_ENV, check=False)


def test_the_launcher_execs_every_argument_verbatim(launcher: Path, tmp_path: Path) -> None:
    # Given arguments a shell would otherwise interpret, and a variable with a quote in it
    argv = ["printf", "%s|", "a b", "it's", "$HOME", "`id`", "\n", "", "é"]
    contents = launch_file([*argv, "$GREETING"], {"GREETING": "it's me"}, LIMITS)
    # When the launcher runs them
    completed = _launch(launcher, tmp_path, contents)
    # Then every argument arrives as written, nothing expanded
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.decode() == "a b|it's|$HOME|`id`|\n||é|$GREETING|"


def test_the_launcher_sets_the_languages_variables(launcher: Path, tmp_path: Path) -> None:
    contents = launch_file(["printenv", "GREETING"], {"GREETING": "it's me"}, LIMITS)
    assert _launch(launcher, tmp_path, contents).stdout == b"it's me\n"


@pytest.mark.parametrize(("merge", "expected"), [(True, (b"a\nb\nc\n", b"")), (False, (b"a\nc\n", b"b\n"))])
def test_the_launcher_can_send_stderr_into_stdout(
    launcher: Path, tmp_path: Path, merge: bool, expected: tuple[bytes, bytes]
) -> None:
    contents = launch_file(["sh", "-c", "echo a; echo b >&2; echo c"], {}, LIMITS, merge_stderr=merge)
    completed = _launch(launcher, tmp_path, contents)
    assert (completed.stdout, completed.stderr) == expected


def test_the_launcher_lowers_the_limits_before_the_exec(launcher: Path, tmp_path: Path) -> None:
    # Given limits, one of them an address space
    limits = LaunchLimits(cpu_time_s=7, file_size_bytes=4096, open_files=64, address_space_bytes=512 << 20)
    # When the program reads its own limits
    completed = _launch(launcher, tmp_path, launch_file(["cat", "/proc/self/limits"], {}, limits))
    # Then soft and hard limits are both what was asked (hard: the program cannot raise them back)
    rows = {line[:26].strip(): line[26:].split() for line in completed.stdout.decode().splitlines()[1:]}
    assert rows["Max cpu time"][:2] == ["7", "7"]
    assert rows["Max file size"][:2] == ["4096", "4096"]
    assert rows["Max open files"][:2] == ["64", "64"]
    assert rows["Max core file size"][:2] == ["0", "0"]
    assert rows["Max address space"][:2] == [str(512 << 20)] * 2


@pytest.mark.parametrize(
    ("contents", "status", "message"),
    [
        pytest.param(launch_file(["no-such-program-here"], {}, LIMITS), 127, b"No such file", id="not-found"),
        pytest.param(launch_file(["/usr"], {}, LIMITS), 126, b"Permission denied", id="not-executable"),
        pytest.param(b"Atrue", LAUNCH_FILE_UNUSABLE_EXIT, b"NUL-terminated", id="unterminated"),
        pytest.param(b"Xtrue\0", LAUNCH_FILE_UNUSABLE_EXIT, b"unknown record", id="unknown-record"),
        pytest.param(b"L4 x\0Atrue\0", LAUNCH_FILE_UNUSABLE_EXIT, b"not a limit", id="bad-limit"),
        pytest.param(b"", LAUNCH_FILE_UNUSABLE_EXIT, b"NUL-terminated", id="empty"),
        pytest.param(b"L4 0\0", LAUNCH_FILE_UNUSABLE_EXIT, b"nothing to launch", id="no-argv"),
    ],
)
def test_the_launcher_fails_like_a_shell_and_says_why(
    launcher: Path, tmp_path: Path, contents: bytes, status: int, message: bytes
) -> None:
    completed = _launch(launcher, tmp_path, contents)
    assert completed.returncode == status
    assert message in completed.stderr
    assert completed.stdout == b""


@pytest.mark.parametrize("name", ["A-B", "1X", "X Y", "", "A=B"])
def test_impossible_variable_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="variable name"):
        launch_file(["true"], {name: "v"}, LIMITS)


@pytest.mark.parametrize(
    ("argv", "env"),
    [(["echo", "a\0b"], {}), (["true"], {"X": "a\0b"})],
    ids=["in-a-word", "in-a-variable"],
)
def test_a_nul_byte_is_refused(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="NUL"):
        launch_file(argv, env, LIMITS)


def test_nothing_to_launch_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing to launch"):
        launch_file([], {}, LIMITS)
