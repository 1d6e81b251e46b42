"""What the local backend observes -> evidence (pure): bubblewrap's status and the output it captured."""

from __future__ import annotations

import signal

import pytest

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
