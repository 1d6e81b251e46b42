"""Load and soak through the server `make run` starts (`python -m functions serve`, its own process, worker
processes, the local sandbox), on loopback, bounded: 200 requests from 50 concurrent clients, then 1,000
sequential runs. Every request prints a token of its own. The scenario runs once (module fixture); each test
asserts one property of it. Latency and throughput figures belong to `make bench` (tests/bench/load_bench.py),
not here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from functions.settings import Settings
from tests.load_support import (
    SANDBOX_COMMANDS,
    LoadResult,
    ServedProcess,
    command_name,
    concurrent_load,
    is_alive,
    processes_in_cgroup,
    sequential_runs,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

CLIENTS = 50
CONCURRENT_REQUESTS = 200
WARM_UP_RUNS = 50
SOAK_RUNS = 1000
RSS_TOLERANCE = 0.10


@dataclass(frozen=True)
class Scenario:
    burst: LoadResult
    soak: LoadResult
    server_rss_kb: tuple[int, int]  # after warm-up, after the soak
    tree_rss_kb: tuple[int, int]  # the server and every process below it
    sandbox_processes_when_idle: list[str]
    cgroup_root_seen: bool  # the runs' cgroups lived under the server's own root
    alive_after_stop: list[int]
    in_our_cgroups_after_stop: list[int]
    cgroups_left: list[str]


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    served = ServedProcess()
    try:
        # Given the server under a burst, then warmed up
        burst = concurrent_load(served.url, requests=CONCURRENT_REQUESTS, clients=CLIENTS)
        sequential_runs(served.url, count=WARM_UP_RUNS)
        warm_tree = [served.pid, *served.descendants()]
        warm = (served.rss_kb([served.pid]), served.rss_kb(warm_tree))
        # When it serves the soak
        soak = sequential_runs(served.url, count=SOAK_RUNS)
        idle_tree = served.descendants()
        after = (served.rss_kb([served.pid]), served.rss_kb([served.pid, *idle_tree]))
        idle_sandboxes = [name for name in map(command_name, idle_tree) if name in SANDBOX_COMMANDS]
        cgroup_root_seen = bool(served.cgroup_dirs())
        # and is stopped as Ctrl-C or a process manager would
        served.stop()
        yield Scenario(
            burst=burst,
            soak=soak,
            server_rss_kb=(warm[0], after[0]),
            tree_rss_kb=(warm[1], after[1]),
            sandbox_processes_when_idle=idle_sandboxes,
            cgroup_root_seen=cgroup_root_seen,
            alive_after_stop=[pid for pid in served.seen_pids if is_alive(pid)],
            in_our_cgroups_after_stop=processes_in_cgroup(served.cgroup_root),
            cgroups_left=[str(path) for d in served.cgroup_dirs() for path in d.iterdir() if path.is_dir()],
        )
    finally:
        served.stop()
        served.remove_cgroup_root()


def test_every_concurrent_request_is_answered(scenario: Scenario) -> None:
    burst = scenario.burst
    assert burst.requests == CONCURRENT_REQUESTS
    assert burst.unanswered == 0, burst.outcomes
    assert set(burst.outcomes) <= {"200", "503"}, burst.outcomes
    assert burst.outcomes["200"] > 0


def test_every_200_carries_its_own_output(scenario: Scenario) -> None:
    assert scenario.burst.mixed_up == 0
    assert scenario.soak.mixed_up == 0


def test_every_503_says_when_to_retry(scenario: Scenario) -> None:
    assert scenario.burst.without_retry_after == 0


def test_every_sequential_run_succeeds(scenario: Scenario) -> None:
    assert scenario.soak.outcomes == {"200": SOAK_RUNS}


def test_memory_after_the_soak_is_that_after_warm_up(scenario: Scenario) -> None:
    for warm_kb, after_kb in (scenario.server_rss_kb, scenario.tree_rss_kb):
        assert abs(after_kb - warm_kb) <= RSS_TOLERANCE * warm_kb, (warm_kb, after_kb)


def test_no_sandbox_outlives_its_run(scenario: Scenario) -> None:
    # Idle, only the sandboxes started ahead of demand remain (each waits as bubblewrap's two processes):
    # none of the 1,250 runs left one behind
    settings = Settings()
    warm_limit = settings.local_max_concurrency * settings.local_warm_pool_size * 2
    assert set(scenario.sandbox_processes_when_idle) <= {"bwrap"}
    assert len(scenario.sandbox_processes_when_idle) <= warm_limit


def test_nothing_is_left_after_the_server_stops(scenario: Scenario) -> None:
    assert scenario.alive_after_stop == []
    assert scenario.in_our_cgroups_after_stop == []


def test_no_run_cgroup_is_left(scenario: Scenario) -> None:
    if not scenario.cgroup_root_seen:
        pytest.skip("the local backend ran without cgroups on this host")
    assert scenario.cgroups_left == []
