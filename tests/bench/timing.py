"""Timing helpers for `make bench`: interleaved samples (machine drift hits every column alike), medians, p99."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

Action = Callable[[int], object]  # called with the repetition's number (to vary a source, say)


# What a service does after answering (a warm pool refilling, a sandbox torn down) takes a few milliseconds;
# each sample waits this long first, so it times its own request on a quiet machine, not the previous one's
# background work. Throughput, below, is where that work counts.
SETTLE_S = 0.04


def interleaved(
    actions: Mapping[str, Action], repetitions: int, *, settle_s: float = SETTLE_S
) -> dict[str, list[float]]:
    """Each action once per round, in the same order every round, each after `settle_s` of quiet; one
    warm-up round not counted."""
    for action in actions.values():
        action(-1)
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for repetition in range(repetitions):
        for name, action in actions.items():
            time.sleep(settle_s)
            started = time.perf_counter()
            action(repetition)
            samples[name].append(time.perf_counter() - started)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return {"median_ms": round(statistics.median(ordered) * 1000, 2), "p99_ms": round(p99 * 1000, 2)}


def throughput(action: Action, *, clients: int, duration_s: float) -> float:
    """Completed actions per second with `clients` callers in a closed loop for `duration_s`."""
    stop = threading.Event()
    done = [0] * clients

    def client(index: int) -> None:
        while not stop.is_set():
            action(index)
            done[index] += 1

    with ThreadPoolExecutor(max_workers=clients) as pool:
        started = time.perf_counter()
        futures = [pool.submit(client, index) for index in range(clients)]
        stop.wait(duration_s)
        stop.set()
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - started
    return round(sum(done) / elapsed, 2)
