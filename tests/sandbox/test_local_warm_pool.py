"""Warm sandboxes: refilled in the background, used once, never waited for, discarded when they die idle."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from functions.backends.local.sandbox import HostSetup, Launch, PhaseLimits, Sandbox
from functions.backends.local.warm_pool import WarmPool
from functions.core.protocol import b64decode
from tests.sandbox_support import sandbox_host

pytestmark = [pytest.mark.sandbox]

LIMITS = PhaseLimits(
    timeout_s=20.0, memory_limit_mb=128, max_processes=16, file_size_bytes=1 << 20, output_limit_bytes=4096
)
# Prints its PID namespace, whether an earlier run's mark is in /tmp, then leaves a mark.
IDENTITY = (
    "import os\nprint(os.readlink('/proc/self/ns/pid'), os.path.exists('/tmp/mark'))\n"
    "open('/tmp/mark', 'w').write('x')\n"
)
READY_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def host() -> Iterator[HostSetup]:
    with sandbox_host() as host:
        yield host


@pytest.fixture
def pool(host: HostSetup) -> Iterator[WarmPool]:
    pool = WarmPool(host, size=2, idle_s=600.0)
    pool.start()
    yield pool
    pool.close()


def _run_identity(pool: WarmPool, sandbox: Sandbox) -> str:
    try:
        sandbox.box.write_file("main.py", IDENTITY.encode())
        report = sandbox.run(Launch(("/usr/bin/python3", "/box/main.py")), LIMITS)
    finally:
        pool.release(sandbox)
    return b64decode(report.stdout.data_b64).decode().strip()


def test_the_pool_fills_and_refills_after_each_use(pool: WarmPool) -> None:
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)
    sandbox = pool.acquire(writable_box=False)
    _run_identity(pool, sandbox)
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)


def test_the_pool_waits_for_the_running_program_before_refilling(pool: WarmPool) -> None:
    # Given a full pool, one of whose sandboxes is handed out and not yet released
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)
    sandbox = pool.acquire(writable_box=False)
    # Then the pool does not start another while the run holds it (one is still ready for a next run)
    assert not pool.wait_until_ready(2, timeout_s=0.5)
    # When the run ends
    pool.release(sandbox)
    # Then the pool refills
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)


def test_a_pool_left_empty_refills_even_while_its_sandboxes_run(pool: WarmPool) -> None:
    # Given every ready sandbox handed out and still running
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)
    held = [pool.acquire(writable_box=False) for _ in range(2)]
    try:
        # Then the pool starts one anyway, for the next run
        assert pool.wait_until_ready(1, timeout_s=READY_TIMEOUT_S)
    finally:
        for sandbox in held:
            pool.release(sandbox)


def test_consecutive_runs_never_share_a_sandbox(pool: WarmPool) -> None:
    # Given two runs from the pool, one after the other
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)
    first, second = pool.acquire(writable_box=False), pool.acquire(writable_box=False)
    first_cgroup, second_cgroup = first._cgroup, second._cgroup
    first_seen, second_seen = _run_identity(pool, first), _run_identity(pool, second)
    # Then each had its own PID namespace, /tmp (no mark from the other) and cgroup
    (first_ns, first_mark), (second_ns, second_mark) = first_seen.split(), second_seen.split()
    assert first_ns != second_ns
    assert (first_mark, second_mark) == ("False", "False")
    assert first_cgroup is not None
    assert second_cgroup is not None
    assert first_cgroup.dirs != second_cgroup.dirs


def test_a_pool_never_used_holds_no_sandbox(host: HostSetup) -> None:
    pool = WarmPool(host, size=2, idle_s=600.0)
    try:
        assert not pool.wait_until_ready(1, timeout_s=0.5)
    finally:
        pool.close()


def test_an_empty_pool_starts_one_on_demand(host: HostSetup) -> None:
    pool = WarmPool(host, size=0, idle_s=600.0)
    try:
        assert pool.ready_count() == 0
        assert _run_identity(pool, pool.acquire(writable_box=False)).endswith("False")
    finally:
        pool.close()


def test_after_a_compile_one_writable_sandbox_waits_ready(pool: WarmPool) -> None:
    # Given a full pool that has served no compile step: no writable sandbox waits
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)
    assert pool.ready_count(writable_box=True) == 0
    # When a compile step asks for one
    first = pool.acquire(writable_box=True)
    # Then it gets a writable one started on demand, and the read-only ones are left for run steps
    assert first.writable_box
    assert pool.ready_count() == 2
    pool.release(first)
    # And from then on one writable sandbox waits for the next compile, which gets it
    assert pool.wait_until_ready(1, timeout_s=READY_TIMEOUT_S, writable_box=True)
    second = pool.acquire(writable_box=True)
    assert second.writable_box
    assert second is not first
    assert pool.ready_count(writable_box=True) == 0
    pool.release(second)


def test_a_sandbox_killed_while_idle_is_discarded_not_used(pool: WarmPool) -> None:
    # Given a full pool whose oldest sandbox is killed while it waits
    assert pool.wait_until_ready(2, timeout_s=READY_TIMEOUT_S)
    victim = pool._ready[False][0][1]
    os.kill(victim.child_pid, signal.SIGKILL)
    deadline_s = time.monotonic() + READY_TIMEOUT_S
    while victim.alive() and time.monotonic() < deadline_s:
        time.sleep(0.01)
    # When a run asks for one
    sandbox = pool.acquire(writable_box=False)
    # Then it gets a live one that works
    assert sandbox is not victim
    assert _run_identity(pool, sandbox).endswith("False")


def test_idle_sandboxes_are_replaced(host: HostSetup) -> None:
    pool = WarmPool(host, size=1, idle_s=0.3)
    pool.start()
    try:
        # Given a pool whose only sandbox is older than the idle lifetime
        assert pool.wait_until_ready(1, timeout_s=READY_TIMEOUT_S)
        first = pool._ready[False][0][1]
        # When the pool's worker notices (it takes the sandbox out of the queue, then destroys it)
        deadline_s = time.monotonic() + READY_TIMEOUT_S
        while first.alive() and time.monotonic() < deadline_s:
            time.sleep(0.05)
        # Then the old sandbox is gone and a fresh one waits in its place
        assert not first.alive()
        assert pool.wait_until_ready(1, timeout_s=READY_TIMEOUT_S)
        assert all(sandbox is not first for _, sandbox in pool._ready[False])
    finally:
        pool.close()
