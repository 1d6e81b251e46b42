"""What the local backend observes -> evidence (pure): bubblewrap's status, the launcher it writes."""

from __future__ import annotations

import signal
import subprocess

import pytest

from functions.backends.local.launch import ShellLimits, launch_script, quote
from functions.backends.local.reports import exit_status, process_report
from functions.core.output_digest import Capture, normalized_sha256
from functions.core.protocol import b64decode


@pytest.mark.parametrize(
    ("returncode", "expected"),
    [
        pytest.param(0, (0, None), id="success"),
        pytest.param(3, (3, None), id="exit-code"),
        pytest.param(128, (128, None), id="128-is-an-exit-code"),
        pytest.param(128 + signal.SIGSEGV, (None, signal.SIGSEGV), id="shell-style-signal"),
        pytest.param(-signal.SIGKILL, (None, signal.SIGKILL), id="monitor-killed"),
        pytest.param(255, (255, None), id="beyond-signals"),
    ],
)
def test_exit_status(returncode: int, expected: tuple[int | None, int | None]) -> None:
    assert exit_status(returncode) == expected


def _capture(data: bytes, limit: int = 4) -> Capture:
    capture = Capture(limit)
    capture.add(data)
    return capture


def test_a_stopped_run_is_timed_out_whatever_its_status() -> None:
    report = process_report(
        returncode=0,
        stopped=True,
        wall_time_s=1.0,
        cpu_time_s=0.9,
        memory_kb=10,
        oom_killed=False,
        stdout=_capture(b""),
        stderr=_capture(b""),
    )
    assert (report.timed_out, report.exit_code, report.signal) == (True, None, signal.SIGKILL)


def test_streams_keep_the_cap_the_total_the_digest_and_the_tail_when_cut() -> None:
    report = process_report(
        returncode=0,
        stopped=False,
        wall_time_s=0.1,
        cpu_time_s=0.1,
        memory_kb=10,
        oom_killed=False,
        stdout=_capture(b"abcdef  \n\n"),
        stderr=_capture(b"ok"),
    )
    assert b64decode(report.stdout.data_b64) == b"abcd"
    assert report.stdout.total_bytes == 10
    assert report.stdout.normalized_sha256 == normalized_sha256(b"abcdef")
    assert b64decode(report.stdout.tail_b64) == b"abcdef  \n\n"
    assert report.stderr.tail_b64 == ""


def test_launcher_execs_any_argument_verbatim() -> None:
    # Given arguments a shell would otherwise interpret
    argv = ["printf", "%s|", "a b", "it's", "$HOME", "`id`", "\n", ""]
    script = launch_script(
        argv, {"GREETING": "it's me"}, ShellLimits(cpu_time_s=5, file_size_bytes=1000, open_files=64)
    )
    # When a POSIX shell runs it
    completed = subprocess.run(
        ["/bin/sh", "-c", script + "\n"], capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )
    # Then every argument arrives as written
    assert completed.stdout.decode() == "a b|it's|$HOME|`id`|\n||"


def test_launcher_can_send_stderr_into_stdout() -> None:
    limits = ShellLimits(cpu_time_s=5, file_size_bytes=1000, open_files=64)
    argv = ["sh", "-c", "echo a; echo b >&2; echo c"]
    merged = subprocess.run(
        ["/bin/sh", "-c", launch_script(argv, {}, limits, merge_stderr=True)], capture_output=True, check=True
    )
    apart = subprocess.run(
        ["/bin/sh", "-c", launch_script(argv, {}, limits)], capture_output=True, check=True
    )
    assert (merged.stdout, merged.stderr) == (b"a\nb\nc\n", b"")
    assert (apart.stdout, apart.stderr) == (b"a\nc\n", b"b\n")


def test_launcher_lowers_the_limits_before_the_exec() -> None:
    limits = ShellLimits(
        cpu_time_s=7, file_size_bytes=4096, open_files=64, address_space_bytes=512 * 1024 * 1024
    )
    script = launch_script(["cat", "/proc/self/limits"], {}, limits)
    limits_text = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True).stdout.decode()
    rows = {line[:26].strip(): line[26:].split() for line in limits_text.splitlines()[1:]}
    assert rows["Max cpu time"][:2] == ["7", "7"]
    assert rows["Max file size"][:2] == ["4096", "4096"]
    assert rows["Max open files"][:2] == ["64", "64"]
    assert rows["Max core file size"][:2] == ["0", "0"]
    assert rows["Max address space"][:2] == [str(512 * 1024 * 1024)] * 2


@pytest.mark.parametrize("name", ["A-B", "1X", "X Y", ""])
def test_launcher_refuses_impossible_variable_names(name: str) -> None:
    with pytest.raises(ValueError, match="variable name"):
        launch_script(["true"], {name: "v"}, ShellLimits(cpu_time_s=1, file_size_bytes=1, open_files=1))


def test_quote_round_trips_single_quotes() -> None:
    assert quote("a'b") == "'a'\\''b'"
