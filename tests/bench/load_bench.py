"""`make bench-load`: the server `make run` starts, under the load of tests/integration/test_load_soak.py.

Figures, not assertions: p50/p99 latency, runs/s and the 503 share of a burst (N clients at once, each
request a Python program printing its own token) and of sequential runs on one kept-alive connection, next
to a bare `/usr/bin/python3` start measured in the same run (the floor a run cannot go below). Results go to
tests/bench/load-results.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from functions.backends.local.bwrap import SANDBOX_PATH
from tests.load_support import ServedProcess, concurrent_load, sequential_runs

RESULTS_PATH = Path(__file__).with_name("load-results.json")


def _bare_python_s(repetitions: int) -> float:
    """Median start of the interpreter the sandbox runs, unsandboxed: the baseline of a Python run."""
    python = shutil.which("python3", path=SANDBOX_PATH) or "python3"
    samples = []
    for _ in range(repetitions):
        started_s = time.perf_counter()
        subprocess.run([python, "-c", "print('tok')"], check=True, capture_output=True, env={})
        samples.append(time.perf_counter() - started_s)
    return statistics.median(samples)


def _line(name: str, figures: dict[str, Any]) -> str:
    return (
        f"{name:<11} {figures['requests']:>5} requests  p50 {figures['p50_ms']:7.1f} ms  "
        f"p99 {figures['p99_ms']:7.1f} ms  {figures['runs_per_s']:6.1f} runs/s  "
        f"503 share {figures['share_503']:.1%}  {figures['outcomes']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=300)
    arguments = parser.parse_args()
    bare_s = _bare_python_s(repetitions=20)
    served = ServedProcess()
    try:
        sequential_runs(served.url, count=20)  # warm-up: page cache, the workers' first runs
        burst = concurrent_load(served.url, requests=arguments.requests, clients=arguments.clients)
        sequential = sequential_runs(served.url, count=arguments.sequential)
    finally:
        served.stop()
        served.remove_cgroup_root()
    results: dict[str, Any] = {
        "bare_python_ms": round(bare_s * 1000, 1),
        f"burst_{arguments.clients}_clients": burst.figures(),
        "sequential": sequential.figures(),
        "sequential_p50_to_bare": round(sequential.percentile_s(0.5) / bare_s, 1),
    }
    print(f"bare python start {results['bare_python_ms']} ms (median of 20)")
    print(_line(f"burst x{arguments.clients}", results[f"burst_{arguments.clients}_clients"]))
    print(_line("sequential", results["sequential"]))
    print(f"sequential p50 / bare python: x{results['sequential_p50_to_bare']}")
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
