"""`make run`'s asynchronous executions: `python -m functions serve` as a real process (workers, dispatcher,
SQLite under its data dir), called over HTTP, killed and started again on the same data dir."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.backends.local.backend import host_setup
from functions.backends.local.sandbox import HostSetup
from functions.settings import Settings
from tests.async_support import stored_executions, wait_for
from tests.http_support import ApiResponse, http_call
from tests.sandbox_support import assert_nothing_left, sandbox_settings

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
START_WAIT_S = 60.0
BODY = {"language": "python", "code": "print(input()[::-1])", "stdin": "olleh", "encoding": "text"}
SLOW_BODY = {"language": "python", "code": "import time\ntime.sleep(3)\nprint('done')", "encoding": "text"}


@dataclass
class ServerProcess:
    """`python -m functions serve` with the test's settings; its URL read from what it prints."""

    process: subprocess.Popen[str]
    url: str

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> ApiResponse:
        return http_call(self.url, method, path, body, headers=headers)

    def finished(self, execution_id: str, timeout_s: float = 60) -> dict[str, Any]:
        view: dict[str, Any] = wait_for(
            lambda: self.call("GET", f"/executions/{execution_id}").json(),
            lambda view: view.get("state") != "RUNNING",
            timeout_s=timeout_s,
        )
        return view

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)


@dataclass
class LocalHost:
    settings: Settings
    host: HostSetup
    servers: list[ServerProcess]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "EXEC_DATA_DIR": str(self.settings.data_dir),
            "EXEC_LOCAL_CGROUP_ROOT": self.settings.local_cgroup_root,
            "EXEC_LOCAL_MAX_CONCURRENCY": "1",
            # No sandbox started ahead of demand: every live sandbox here is an execution's run.
            "EXEC_LOCAL_WARM_POOL_SIZE": "0",
            "EXEC_ASYNC_POLL_INITIAL_S": "0",
            "EXEC_ASYNC_POLL_MAX_S": "1",
        }

    def start_server(self) -> ServerProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "functions", "serve", "--port", "0", "--quiet"],
            cwd=REPO_ROOT,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        first_line = process.stdout.readline()  # printed once the workers are warm
        match = re.search(r"on (http://\S+)", first_line)
        assert match, f"the server did not start: {first_line!r}"
        server = ServerProcess(process, match.group(1))
        self.servers.append(server)
        return server

    def sandboxes_running(self) -> int:
        """Sandboxes with a live process (a finished one's empty cgroup goes a moment later)."""
        return len(
            {
                child.name
                for parent in self.host.cgroups.parents
                for child in parent.iterdir()
                if child.is_dir() and (child / "cgroup.procs").read_text().split()
            }
        )

    def live_sandbox_processes(self) -> set[str]:
        """Processes still running in any sandbox's cgroup; a dead one waiting to be reaped (by PID 1, once
        its parent, the server, is gone) does not count."""
        pids = {
            pid
            for parent in self.host.cgroups.parents
            for child in parent.iterdir()
            if child.is_dir()
            for pid in (child / "cgroup.procs").read_text().split()
        }
        return {pid for pid in pids if _state(pid) not in ("", "Z")}

    def program_running(self, file_name: str) -> bool:
        """Whether a sandboxed program runs `file_name` (past its sandbox's start-up, not the version probe)."""
        return any(file_name.encode() in _cmdline(pid) for pid in self.live_sandbox_processes())

    def sweep_killed_sandboxes(self) -> None:
        """What the next backend start does (`remove_stale`), retried until PID 1 has reaped the dead."""
        wait_for(self._running_after_sweep, lambda count: count == 0, timeout_s=30)

    def _running_after_sweep(self) -> int:
        self.host.cgroups.remove_stale()
        return self.sandboxes_running()

    def stored(self) -> int:
        return stored_executions(self.settings.data_dir)


@pytest.fixture
def local_host() -> Iterator[LocalHost]:
    settings = sandbox_settings()
    local = LocalHost(settings, host_setup(settings), [])
    try:
        yield local
    finally:
        for server in local.servers:
            server.stop()
    assert_nothing_left(local.host, settings)


@pytest.fixture
def server(local_host: LocalHost) -> ServerProcess:
    return local_host.start_server()


def test_polling_reaches_succeeded_with_exactly_the_execute_response(server: ServerProcess) -> None:
    # Given an execution of a body, and the same body run synchronously
    accepted = server.call("POST", "/executions", BODY)
    synchronous = server.call("POST", "/execute", BODY).json()
    assert accepted.status == 202
    execution_id = accepted.json()["execution_id"]
    # When it is polled until it ends
    view = server.finished(execution_id)
    # Then it SUCCEEDED and its result is the /execute response (its own run, so its own id and timings)
    assert view["state"] == "SUCCEEDED"
    assert view["error"] is None
    assert view["finished_at"] >= view["created_at"]
    result = view["result"]
    assert set(result) == set(synchronous)
    assert result["execution_id"] == execution_id
    for field in ("status", "stdout", "stderr", "exit_code", "verdict", "language", "language_version"):
        assert result[field] == synchronous[field], field


def test_the_same_idempotency_key_gives_one_execution_also_after_it_finished(
    server: ServerProcess, local_host: LocalHost
) -> None:
    key = {"Idempotency-Key": "build-1234"}
    first = server.call("POST", "/executions", BODY, headers=key)
    again = server.call("POST", "/executions", BODY, headers=key)
    assert first.json() == again.json()
    view = server.finished(first.json()["execution_id"])
    # After it finished, the same POST still answers that execution, with its result
    after = server.call("POST", "/executions", BODY, headers=key)
    assert after.status == 202
    assert after.json() == first.json()
    assert server.call("GET", f"/executions/{first.json()['execution_id']}").json() == view
    assert local_host.stored() == 1


def test_an_unknown_id_is_404_and_bad_input_is_400_with_nothing_started(
    server: ServerProcess, local_host: LocalHost
) -> None:
    assert server.call("GET", "/executions/" + "0" * 32).status == 404
    assert server.call("DELETE", "/executions/" + "0" * 32).status == 404
    bad = server.call("POST", "/executions", {**BODY, "language": "cobol"})
    assert (bad.status, bad.json()["error"]) == (400, "unknown_language")
    assert local_host.stored() == 0
    assert local_host.sandboxes_running() == 0


def test_delete_stops_a_running_execution_and_its_sandbox(
    server: ServerProcess, local_host: LocalHost
) -> None:
    execution_id = server.call("POST", "/executions", {**SLOW_BODY, "timeout": 60}).json()["execution_id"]
    wait_for(local_host.sandboxes_running, lambda count: count == 1)
    cancelled = server.call("DELETE", f"/executions/{execution_id}")
    assert (cancelled.status, cancelled.json()["state"]) == (200, "CANCELLED")
    wait_for(local_host.sandboxes_running, lambda count: count == 0, timeout_s=10)
    assert server.call("GET", f"/executions/{execution_id}").json()["state"] == "CANCELLED"


def test_a_server_killed_mid_run_loses_no_execution(local_host: LocalHost) -> None:
    # Given an execution whose program is running (past its sandbox's start-up: a server killed while a
    # sandbox starts can leave bubblewrap's monitor behind, a race of its --die-with-parent)
    first = local_host.start_server()
    execution_id = first.call("POST", "/executions", SLOW_BODY).json()["execution_id"]
    wait_for(lambda: local_host.program_running("main.py"), lambda running: running)
    # When the server is killed (no clean-up of its own): its sandbox dies with it
    first.stop(signal.SIGKILL)
    wait_for(local_host.live_sandbox_processes, lambda pids: not pids, timeout_s=10)
    boxes_at_kill = set(local_host.host.boxes.root.iterdir())
    # And a server is started again on the same data dir
    second = local_host.start_server()
    # Then the execution is still there, is run again, and succeeds
    assert second.call("GET", f"/executions/{execution_id}").status == 200
    view = second.finished(execution_id)
    assert view["state"] == "SUCCEEDED", view
    assert view["result"]["stdout"] == "done\n"
    # A kill leaves the killed sandbox's cgroup and box (swept by a backend start once its processes are
    # reaped): removed here, after checking nothing else was left
    local_host.sweep_killed_sandboxes()
    leftovers = set(local_host.host.boxes.root.iterdir())
    assert leftovers <= boxes_at_kill
    for box in leftovers:
        shutil.rmtree(box)


def test_the_cli_runs_a_file_asynchronously_and_follows_it(local_host: LocalHost, tmp_path: Path) -> None:
    # Given a program whose timeout is above the synchronous ceiling (20 s), allowed asynchronously
    program = tmp_path / "late.py"
    program.write_text("import sys, time\ntime.sleep(1)\nprint('late')\nsys.exit(4)\n")
    # When the CLI runs it with --async
    result = subprocess.run(
        [sys.executable, "-m", "functions", "run", "--async", str(program), "--timeout", "30"],
        cwd=REPO_ROOT,
        env=local_host.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it followed the execution to its end and answers like `run`: output, verdict line, exit code
    assert result.returncode == 4, result.stderr
    assert result.stdout == "late\n"
    assert re.search(r"^execution [0-9a-f]{32}$", result.stderr, re.MULTILINE)
    assert "SUCCEEDED" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("-- runtime_error | exit 4 |")
    assert local_host.stored() == 1


def _state(pid: str) -> str:
    """A process's state letter (R, S, Z, ...); "" once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    return status.split("State:", 1)[1].split()[0]


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
