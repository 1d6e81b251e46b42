"""The one reading of exit statuses and of kills seen from outside (functions/core/process_evidence.py)."""

from __future__ import annotations

import signal

import pytest

from functions.core.process_evidence import exit_status, killed_from_outside


@pytest.mark.parametrize(
    ("returncode", "evidence"),
    [
        pytest.param(0, (0, None), id="success"),
        pytest.param(3, (3, None), id="exit-code"),
        pytest.param(128, (128, None), id="128-is-an-exit-code"),
        pytest.param(137, (None, 9), id="128-plus-sigkill"),
        pytest.param(139, (None, 11), id="128-plus-sigsegv"),
        pytest.param(-9, (None, 9), id="popen-negative"),
        pytest.param(255, (255, None), id="beyond-any-signal"),
    ],
)
def test_exit_status(returncode: int, evidence: tuple[int | None, int | None]) -> None:
    assert exit_status(returncode) == evidence


@pytest.mark.parametrize(
    ("timed_out", "oom_killed"), [(True, False), (False, True)], ids=["deadline", "memory"]
)
def test_a_kill_from_outside_is_a_sigkill_with_its_cause_and_nothing_printed(
    timed_out: bool, oom_killed: bool
) -> None:
    process = killed_from_outside(timed_out=timed_out, oom_killed=oom_killed, wall_time_s=1.5, memory_kb=2048)
    assert (process.exit_code, process.signal) == (None, signal.SIGKILL)
    assert (process.timed_out, process.oom_killed, process.wall_time_s, process.memory_kb) == (
        timed_out,
        oom_killed,
        1.5,
        2048,
    )
    assert (process.stdout.total_bytes, process.stderr.total_bytes) == (0, 0)
