"""Adversarial programs against the real runner in the real sandbox (LocalBackend.run).

Each program prints one line per probe: "DENIED <probe>" when the sandbox stopped it, "ALLOWED <probe>"
otherwise; the tests assert on those lines, so a failure names the probe that got through.
"""

from __future__ import annotations

import http.server
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.core.verdicts import Verdict
from tests.security.conftest import RunProgram

pytestmark = [pytest.mark.sandbox]

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE_HELPER = textwrap.dedent(
    """
    def probe(name, action):
        try:
            action()
        except Exception as exc:
            print("DENIED", name, type(exc).__name__)
        else:
            print("ALLOWED", name)
    """
)


def _probes(body: str) -> str:
    return PROBE_HELPER + textwrap.dedent(body)


def _allowed(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("ALLOWED")]


@pytest.fixture
def http_server() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 standing in for the service's own port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


# --- network ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "probe",
    [
        "socket.create_connection(('127.0.0.1', PORT), timeout=2).close()",
        "socket.create_connection(('localhost', PORT), timeout=2).close()",
        "urllib.request.urlopen(f'http://127.0.0.1:{PORT}/', timeout=2).read()",
        "socket.getaddrinfo('example.com', 80)",
        "socket.create_connection(('1.1.1.1', 53), timeout=2).close()",
        "socket.socket(socket.AF_INET6).connect(('::1', PORT))",
    ],
    ids=["service-port", "localhost-name", "http-get", "dns", "internet", "ipv6-loopback"],
)
def test_no_network(run_program: RunProgram, http_server: int, probe: str) -> None:
    # Given an HTTP server listening on the host's loopback
    code = _probes(f"import socket, urllib.request\nPORT = {http_server}\nprobe('net', lambda: {probe})\n")
    # When a program inside tries to reach it (or anything else)
    run = run_program(code)
    # Then it fails
    assert run.verdict is Verdict.ACCEPTED, run.stderr
    assert run.stdout.startswith("DENIED net"), run.stdout


def test_only_an_unconfigured_loopback(run_program: RunProgram) -> None:
    run = run_program("import socket; print(sorted(name for _, name in socket.if_nameindex()))")
    assert run.stdout.strip() == "['lo']"


# --- environment -----------------------------------------------------------------------------------------

CANARIES = {
    "EXEC_SECRET_CANARY": f"canary-{uuid.uuid4().hex}",
    "AWS_SECRET_ACCESS_KEY": f"aws-{uuid.uuid4().hex}",
    "AWS_SESSION_TOKEN": f"token-{uuid.uuid4().hex}",
}


@pytest.mark.parametrize(
    "dump",
    [
        "print(dict(os.environ))",
        "print(open('/proc/1/environ', 'rb').read())",
        "print(open('/proc/self/environ', 'rb').read())",
        "[print(open(f'/proc/{p}/environ', 'rb').read()) for p in os.listdir('/proc') if p.isdigit()]",
        "print(open(f'/proc/{os.getppid()}/environ', 'rb').read())",
    ],
    ids=["os-environ", "pid1-environ", "self-environ", "every-proc-environ", "parent-environ"],
)
def test_service_environment_is_invisible(
    run_program: RunProgram, monkeypatch: pytest.MonkeyPatch, dump: str
) -> None:
    # Given secrets in the service's environment
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    # When the program dumps every environment it can reach
    run = run_program(f"import os\n{dump}\n")
    # Then no secret is in its output (and no name of one either)
    output = run.stdout + run.stderr
    for name, value in CANARIES.items():
        assert value not in output
        assert name not in output


# --- file system -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/usr/evil", "/etc/evil", "/opt/runner/evil", "/opt/runner/runner.py", "/evil", "/dev/evil",
     "/proc/sys/kernel/threads-max", "/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches",
     "/proc/sysrq-trigger", "/sys/kernel/evil", "/sys/fs/cgroup/evil", "/root/evil", "/usr/bin/python3"],
    ids=["usr", "etc", "runner-dir", "runner-file", "root-fs", "dev", "sysctl-threads-max", "sysctl-hostname",
         "sysctl-drop-caches", "sysrq", "sys", "cgroupfs", "root-home", "overwrite-binary"],
)  # fmt: skip
def test_no_writes_outside_the_work_dir(run_program: RunProgram, path: str) -> None:
    # Given a path outside the private /tmp
    # When the program opens it for writing (opening only: a regression must not change the host)
    code = _probes(
        f"import os\nprobe('write', lambda: os.close(os.open({path!r}, os.O_WRONLY | os.O_CREAT, 0o600)))"
    )
    run = run_program(code)
    # Then the open fails
    assert run.stdout.startswith("DENIED write"), run.stdout


def test_host_file_system_stays_untouched(run_program: RunProgram, tmp_path: Path) -> None:
    # Given a path in the host's temp dir that does not exist
    marker = tmp_path / f"marker-{uuid.uuid4().hex}"
    # When the program writes to that path (inside the sandbox it lands in its private /tmp at most)
    code = _probes(
        f"import os\nos.makedirs({str(tmp_path)!r}, exist_ok=True)\n"
        f"probe('write', lambda: open({str(marker)!r}, 'w').write('pwned'))\n"
    )
    run_program(code)
    # Then the host never sees it
    assert not marker.exists()


@pytest.mark.parametrize(
    "path",
    ["/root", "/work", str(REPO_ROOT), str(REPO_ROOT / "functions"), "/home", "/etc/shadow", "/etc/passwd",
     "/var/run/docker.sock", "/proc/1/root/root", "/sys/fs/cgroup"],
    ids=["root-home", "work", "repo", "repo-functions", "home", "shadow", "passwd", "docker-sock",
         "proc-root-escape", "cgroupfs"],
)  # fmt: skip
def test_host_paths_are_invisible(run_program: RunProgram, path: str) -> None:
    code = _probes(
        f"import os\n"
        f"def look():\n"
        f"    entries = os.listdir({path!r}) if os.path.isdir({path!r}) else open({path!r}, 'rb').read()\n"
        f"    if not entries:\n"
        f"        raise FileNotFoundError('empty')\n"
        f"probe('read', look)\n"
    )
    run = run_program(code)
    assert run.stdout.startswith("DENIED read"), run.stdout


def test_tmp_is_size_capped(run_program: RunProgram) -> None:
    # Given a private /tmp capped by local_tmp_size_mb (64 MiB by default)
    code = _probes(
        "def fill():\n"
        "    with open('/tmp/fill', 'wb') as f:\n"
        "        for _ in range(1024):\n"
        "            f.write(b'x' * (1 << 20))\n"
        "probe('fill', fill)\n"
    )
    # When the program writes 1 GiB there / Then the write fails (ENOSPC or the file-size rlimit)
    run = run_program(code, memory_limit_mb=256)
    assert "ALLOWED" not in run.stdout, run.stdout


# --- identity and kernel surface -------------------------------------------------------------------------


def test_identity_is_unprivileged_and_isolated(run_program: RunProgram) -> None:
    run = run_program(
        "import os, socket\n"
        "print(os.getuid(), os.getgid(), socket.gethostname())\n"
        "print(len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
    )
    ids_line, process_count = run.stdout.splitlines()
    assert ids_line == "65534 65534 sandbox"
    # Only the sandbox's own few processes are visible (PID namespace), not the host's.
    assert int(process_count) < 10


@pytest.mark.parametrize(
    "probe",
    [
        "subprocess.run(['unshare', '-U', 'true'], check=True, capture_output=True)",
        "subprocess.run(['mount', '-t', 'tmpfs', 'none', '/tmp'], check=True, capture_output=True)",
        "open('/dev/mem', 'rb').read(1)",
        "os.setuid(0)",
    ],
    ids=["nested-userns", "mount", "dev-mem", "setuid-root"],
)
def test_privileged_operations_fail(run_program: RunProgram, probe: str) -> None:
    run = run_program(_probes(f"import os, subprocess\nprobe('priv', lambda: {probe})\n"))
    assert run.stdout.startswith("DENIED priv"), run.stdout + run.stderr


# --- resources and lifetime ------------------------------------------------------------------------------

FORK_BOMB = {
    "python": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "cpp": "#include <unistd.h>\nint main() { while (true) fork(); }\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("language", sorted(FORK_BOMB), ids=sorted(FORK_BOMB))
def test_fork_bomb_is_contained(run_program: RunProgram, language: str) -> None:
    # Given a fork bomb with a 2 s limit
    started_s = time.monotonic()
    # When it runs
    run = run_program(FORK_BOMB[language], language=language, timeout=2)
    # Then the response still arrives, promptly, and the run is not accepted
    assert run.verdict is not Verdict.ACCEPTED
    assert time.monotonic() - started_s < 2 + 10  # generous bound: timeout + compile + teardown


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    "spawn",
    [
        "subprocess.Popen(['sleep', '1000', MARKER], start_new_session=True)",
        (
            "os.fork() == 0 and (os.setsid(), os.fork() == 0 and os.execvp('sleep', ['sleep', '1000', MARKER]),"
            " os._exit(0))"
        ),
        "subprocess.Popen(['sh', '-c', f'nohup sleep 1000 {MARKER} >/dev/null 2>&1 &'])",
    ],
    ids=["setsid", "double-fork", "nohup-background"],
)
def test_no_process_survives_the_response(run_program: RunProgram, spawn: str) -> None:
    # Given a program that leaves a daemon behind, marked in its argv
    marker = f"marker-{uuid.uuid4().hex}"
    code = f"import os, subprocess, time\nMARKER = {marker!r}\n{spawn}\ntime.sleep(0.2)\nprint('spawned')\n"
    # When the run returns
    run = run_program(code)
    # Then the daemon is gone
    assert "spawned" in run.stdout, run.stderr
    assert _processes_with(marker) == []
