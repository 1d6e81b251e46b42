"""One Sandbox, real bubblewrap and cgroups: plumbing, bounds, kills from outside, figures, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from functions.backends.local.sandbox import HostSetup, Launch, PhaseLimits, Sandbox
from functions.backends.local.uids import UidPool
from functions.core.errors import BackendUnavailableError, CapacityExhaustedError
from functions.core.protocol import ProcessReport, b64decode
from tests.sandbox_support import sandbox_host

pytestmark = [pytest.mark.sandbox]

LIMITS = PhaseLimits(
    timeout_s=20.0,
    memory_limit_mb=128,
    max_processes=16,
    file_size_bytes=1 << 20,
    output_limit_bytes=64 * 1024,
)
PYTHON = "/usr/bin/python3"

RunIt = Callable[..., ProcessReport]


@pytest.fixture(scope="module")
def host() -> Iterator[HostSetup]:
    with sandbox_host() as host:
        yield host


@pytest.fixture
def run(host: HostSetup) -> RunIt:
    """Run a python snippet in a fresh sandbox (`limits` fields may be overridden)."""

    def run_it(
        code: str, *, stdin: bytes = b"", cancel: threading.Event | None = None, **limits: object
    ) -> ProcessReport:
        sandbox = Sandbox(host, writable_box=False)
        try:
            sandbox.box.write_file("main.py", code.encode())
            phase = replace(LIMITS, **limits)  # type: ignore[arg-type]
            return sandbox.run(Launch((PYTHON, "/box/main.py")), phase, stdin=stdin, cancel=cancel)
        finally:
            sandbox.close()

    return run_it


def test_large_stdin_round_trips(run: RunIt) -> None:
    # Given 1 MiB of input, more than a pipe buffer
    payload = bytes(range(256)) * 4096
    # When a program echoes it
    report = run(
        "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())",
        stdin=payload,
        output_limit_bytes=2 << 20,
    )
    # Then it comes back whole
    assert report.exit_code == 0
    assert b64decode(report.stdout.data_b64) == payload


def test_output_beyond_the_cap_is_counted_and_digested_not_kept(run: RunIt) -> None:
    report = run("import sys\nfor _ in range(100): sys.stdout.write('x' * 100000)", output_limit_bytes=1000)
    assert len(b64decode(report.stdout.data_b64)) == 1000
    assert report.stdout.total_bytes == 10_000_000
    assert report.exit_code == 0


def test_the_service_environment_never_reaches_the_program(
    run: RunIt, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXEC_SECRET_CANARY", "canary-7f3a")
    report = run("import os; print(sorted(os.environ))")
    assert b"EXEC_SECRET_CANARY" not in b64decode(report.stdout.data_b64)


def test_the_deadline_kills_from_outside(run: RunIt) -> None:
    started_s = time.monotonic()
    report = run("import time; time.sleep(1000)", timeout_s=0.5)
    assert report.timed_out
    assert 0.5 <= report.wall_time_s < 5
    assert time.monotonic() - started_s < 10


def test_cancel_stops_the_run(run: RunIt) -> None:
    cancel = threading.Event()
    cancel.set()
    report = run("import time; time.sleep(1000)", cancel=cancel)
    assert report.timed_out


def test_a_straggler_holding_the_pipes_is_killed_when_the_program_exits(run: RunIt) -> None:
    # Given a program whose detached child keeps stdout open for a long time
    code = "import os, time\nif os.fork() == 0:\n    os.setsid(); time.sleep(1000)\nprint('parent done')"
    started_s = time.monotonic()
    report = run(code)
    # Then the run ends with the program, not with its child
    assert (report.exit_code, b64decode(report.stdout.data_b64)) == (0, b"parent done\n")
    assert time.monotonic() - started_s < 10


def test_memory_figures_come_from_the_cgroup(run: RunIt) -> None:
    report = run("x = bytearray(100 * 1024 * 1024)\nx[::4096] = b'1' * len(x[::4096])", memory_limit_mb=256)
    assert report.exit_code == 0
    assert 95 * 1024 <= report.memory_kb <= 115 * 1024


def test_cpu_time_covers_every_process_reaped_or_not(run: RunIt) -> None:
    # Given a program whose child burns CPU and is never waited for
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n    end = time.process_time() + 0.6\n    while time.process_time() < end: pass\n    os._exit(0)\n"
        "time.sleep(1)"
    )
    report = run(code)
    assert report.cpu_time_s >= 0.5


def test_the_memory_cgroup_kills_and_is_the_evidence(run: RunIt) -> None:
    report = run("x = bytearray(400 * 1024 * 1024); print(len(x))", memory_limit_mb=32)
    assert report.oom_killed
    assert report.signal == 9


def test_processes_are_bounded(run: RunIt) -> None:
    code = (
        "import os, time\nchildren = 0\nfor _ in range(500):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30); os._exit(0)\n    children += 1\n"
        "print(children)"
    )
    report = run(code, max_processes=10)
    assert int(b64decode(report.stdout.data_b64)) < 10 + 4


def test_the_program_files_are_read_only_and_tmp_is_its_own(run: RunIt) -> None:
    code = (
        "import os\n"
        "for path in ('/box/main.py', '/box/.launch', '/box/new'):\n"
        "    try:\n        open(path, 'a').close(); print('WROTE', path)\n    except OSError as e:\n        print('refused', path)\n"
        "open('scratch', 'w').write('ok'); print(os.getcwd(), os.listdir('.'))"
    )
    lines = b64decode(run(code).stdout.data_b64).decode().splitlines()
    assert not [line for line in lines if line.startswith("WROTE")]
    assert lines[-1] == "/tmp ['scratch']"


def test_concurrent_sandboxes_have_distinct_host_uids(host: HostSetup) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give each sandbox its own uid")
    sandboxes = [Sandbox(host, writable_box=False) for _ in range(3)]
    try:
        uids = {_host_uid(sandbox.child_pid) for sandbox in sandboxes}
    finally:
        for sandbox in sandboxes:
            sandbox.close()
    assert len(uids) == 3
    assert all(host.uids.base <= uid < host.uids.base + host.uids.count for uid in uids)


def test_two_services_on_one_host_never_share_a_sandbox_uid(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give each sandbox its own uid")
    # Given two services with data dirs of their own on one host (a `make run` beside a test run), with a
    # uid range of two
    leases = {"local_uid_lease_dir": tmp_path / "leases", "local_sandbox_uid_count": 2}
    with sandbox_host(**leases) as first, sandbox_host(**leases) as second:
        # When each starts a sandbox
        sandboxes = [Sandbox(first, writable_box=False), Sandbox(second, writable_box=False)]
        try:
            uids = {_host_uid(sandbox.child_pid) for sandbox in sandboxes}

            # Then they run as two uids, and a third sandbox anywhere finds the range in use
            with pytest.raises(CapacityExhaustedError):
                Sandbox(first, writable_box=False)
        finally:
            for sandbox in sandboxes:
                sandbox.close()
    assert len(uids) == 2


def test_a_uid_is_leased_again_only_after_its_leftover_processes_are_killed(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give each sandbox its own uid")
    # Given a range of one uid, and a process left running as that uid after its lease ended (what a service
    # killed mid-start can leave behind)
    pool = UidPool(base=61000, count=1, lock_dir=tmp_path / "leases")
    lease = pool.lease()
    leftover = subprocess.Popen(
        ["/bin/sleep", "60"], user=lease.uid, group=lease.gid, extra_groups=[], start_new_session=True
    )
    lease.release()
    try:
        # When the uid is leased again
        again = pool.lease()
        again.release()

        # Then the leftover is gone before the uid is handed out
        assert leftover.wait(timeout=10) == -signal.SIGKILL
    finally:
        leftover.kill()
        leftover.wait()


def _host_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return int(line.split()[1])


def test_a_sandbox_killed_while_waiting_is_never_run(host: HostSetup) -> None:
    sandbox = Sandbox(host, writable_box=False)
    try:
        os.kill(sandbox.child_pid, 9)
        deadline_s = time.monotonic() + 10
        while sandbox.alive() and time.monotonic() < deadline_s:
            time.sleep(0.01)
        assert not sandbox.alive()
        with pytest.raises(BackendUnavailableError, match="ended before"):
            sandbox.run(Launch(("true",)), LIMITS)
    finally:
        sandbox.close()


@pytest.mark.parametrize(
    ("bwrap_path", "message"),
    [("/nonexistent/bwrap", "/nonexistent/bwrap"), ("/bin/false", "did not start")],
    ids=["missing", "exits-at-once"],
)
def test_a_sandbox_that_cannot_start_says_why(host: HostSetup, bwrap_path: str, message: str) -> None:
    broken = replace(host, bwrap_path=bwrap_path)
    with pytest.raises(BackendUnavailableError, match=message):
        Sandbox(broken, writable_box=False)
