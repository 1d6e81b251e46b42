"""The load and soak scenario shared by tests/integration/test_load_soak.py (assertions) and
tests/bench/load_bench.py (figures): `python -m functions serve` (what `make run` starts) as its own
process, and HTTP clients on loopback whose every request prints a token of its own."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0  # workers start and build their service before the banner
STOP_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 60.0
CGROUP_FS_TYPES = ("cgroup", "cgroup2")
# Processes the local backend starts per run; none may outlive its run.
SANDBOX_COMMANDS = frozenset({"bwrap"})


@dataclass
class LoadResult:
    """What the clients saw: a status (or the exception instead of one) and a latency per request."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    mixed_up: int = 0  # 200s whose stdout was not their own token
    without_retry_after: int = 0  # 503s or 429s with no Retry-After
    wall_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    @property
    def unanswered(self) -> int:
        return sum(count for outcome, count in self.outcomes.items() if not outcome.isdigit())

    def share(self, status: int) -> float:
        return self.outcomes[str(status)] / max(1, self.requests)

    def percentile_s(self, fraction: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    @property
    def runs_per_s(self) -> float:
        return self.outcomes["200"] / self.wall_s if self.wall_s else 0.0

    def record(self, outcome: str, latency_s: float, *, mixed_up: bool, without_retry_after: bool) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            self.latencies_s.append(latency_s)
            self.mixed_up += mixed_up
            self.without_retry_after += without_retry_after

    def figures(self) -> dict[str, float | int | dict[str, int]]:
        return {
            "requests": self.requests,
            "outcomes": dict(self.outcomes),
            "p50_ms": round(self.percentile_s(0.50) * 1000, 1),
            "p99_ms": round(self.percentile_s(0.99) * 1000, 1),
            "runs_per_s": round(self.runs_per_s, 1),
            "share_503": round(self.share(503), 3),
            "wall_s": round(self.wall_s, 2),
        }


class Client:
    """One keep-alive HTTP connection that posts programs, each printing a fresh token."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=CLIENT_TIMEOUT_S
        )

    def run_once(self, result: LoadResult) -> None:
        token = f"tok-{uuid.uuid4().hex}"
        body = json.dumps({"language": "python", "encoding": "text", "code": f"print({token!r})"})
        started_s = time.monotonic()
        try:
            self._connection.request("POST", "/execute", body, {"Content-Type": "application/json"})
            response = self._connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            # A reset, a connection closed without an answer: what the load test says must not happen.
            self._connection.close()
            result.record(
                type(exc).__name__, time.monotonic() - started_s, mixed_up=False, without_retry_after=False
            )
            return
        mixed_up = response.status == 200 and json.loads(data).get("stdout") != f"{token}\n"
        busy = response.status in (429, 503)
        result.record(
            str(response.status),
            time.monotonic() - started_s,
            mixed_up=mixed_up,
            without_retry_after=busy and not response.getheader("Retry-After"),
        )

    def close(self) -> None:
        self._connection.close()


def concurrent_load(url: str, *, requests: int, clients: int) -> LoadResult:
    """`clients` connections at once, `requests` in all, each client sending its share one after another."""
    result = LoadResult()
    shares = [requests // clients + (1 if index < requests % clients else 0) for index in range(clients)]
    start = threading.Barrier(clients + 1)

    def client_loop(share: int) -> None:
        client = Client(url)
        start.wait()
        try:
            for _ in range(share):
                client.run_once(result)
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(share,), daemon=True) for share in shares]
    for thread in threads:
        thread.start()
    start.wait()
    started_s = time.monotonic()
    for thread in threads:
        thread.join(timeout=CLIENT_TIMEOUT_S * (max(shares) + 1))
    result.wall_s = time.monotonic() - started_s
    return result


def sequential_runs(url: str, *, count: int) -> LoadResult:
    result = LoadResult()
    client = Client(url)
    started_s = time.monotonic()
    try:
        for _ in range(count):
            client.run_once(result)
    finally:
        client.close()
    result.wall_s = time.monotonic() - started_s
    return result


class ServedProcess:
    """`python -m functions serve` on a free loopback port, with its own cgroup root; `stop` ends it like
    Ctrl-C and waits for it and every process it started."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.cgroup_root = f"code-exec-load-{uuid.uuid4().hex[:8]}"
        environment = {**os.environ, "EXEC_LOCAL_CGROUP_ROOT": self.cgroup_root, **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "functions", "serve", "--host", "127.0.0.1", "--port", "0", "--quiet"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.seen_pids: set[int] = {self.process.pid}
        try:
            self.url = self._read_url()
        except BaseException:
            self.process.kill()
            self.process.wait()
            raise
        # The workers log to the same stdout: a pipe nobody reads fills up and blocks them mid-request.
        threading.Thread(target=self._discard_output, name="served-output", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_url(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_S)
        banner = self.process.stdout.readline() if ready else ""
        # The banner's third word is the URL it serves.
        words = banner.split()
        if len(words) < 3 or not words[2].startswith("http://"):
            raise RuntimeError(f"the server did not start: {banner!r}")
        return words[2]

    def _discard_output(self) -> None:
        assert self.process.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for _line in self.process.stdout:
                pass

    def descendants(self) -> list[int]:
        """The server's process tree below it (remembered, so `stop` can check each one ended)."""
        children: dict[int, list[int]] = {}
        for pid, parent in _parents().items():
            children.setdefault(parent, []).append(pid)
        found: list[int] = []
        pending = [self.pid]
        while pending:
            below = children.get(pending.pop(), [])
            found += below
            pending += below
        self.seen_pids.update(found)
        return found

    def rss_kb(self, pids: list[int]) -> int:
        return sum(_rss_kb(pid) for pid in pids)

    def stop(self) -> None:
        self.descendants()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in self.seen_pids:
            wait_for_exit(pid, timeout_s=STOP_TIMEOUT_S)

    def cgroup_dirs(self) -> list[Path]:
        """Our cgroup root in every mounted hierarchy where it exists."""
        return [mount / self.cgroup_root for mount in cgroup_mounts() if (mount / self.cgroup_root).is_dir()]

    def remove_cgroup_root(self) -> None:
        for directory in self.cgroup_dirs():
            with contextlib.suppress(OSError):
                directory.rmdir()


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return command_name(pid) != "" and not _is_zombie(pid)


def wait_for_exit(pid: int, *, timeout_s: float) -> None:
    """Block until `pid` has exited (a pidfd becomes readable then), at most `timeout_s`."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)


def processes_in_cgroup(root_name: str) -> list[int]:
    """Every process whose cgroup path (any hierarchy) lies under `root_name`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            paths = [line.split(":", 2)[2] for line in (entry / "cgroup").read_text().splitlines()]
            if any(path.strip("/").split("/")[0] == root_name for path in paths):
                found.append(int(entry.name))
    return found


def cgroup_mounts() -> list[Path]:
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return sorted({Path(fields[1]) for fields in map(str.split, mounts) if fields[2] in CGROUP_FS_TYPES})


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (field 4 of /proc/PID/stat, after the command in parentheses)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return parents


def _is_zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False
