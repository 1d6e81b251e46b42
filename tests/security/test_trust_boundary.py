"""The program can neither reach nor impersonate what reports on it (local backend, every language).

Each test is an attack a red team ran against an earlier design, rewritten here: a forged report, reading the
expected outputs, freezing the supervisor, escaping the memory limit with children, sharing kernel state with
a concurrent run. The programs print what they managed; the assertions are on the service's answer.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from functions.core.verdicts import Verdict
from tests.security.conftest import Run, RunProgram

pytestmark = [pytest.mark.sandbox]

FORGED = '{"version": 2, "language_version": "forged", "cases": []}'

# Each program tries to take over whatever reports on it, then prints a wrong answer ("1", expected "2").
TAKEOVER = {
    "python": f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
parent = os.getppid()
for target in {{parent, 1}}:
    try:
        pidfd = os.pidfd_open(target)
        stolen = libc.syscall(438, pidfd, 1, 0)  # pidfd_getfd(pidfd, 1, 0): the parent's stdout
        if stolen >= 0:
            os.write(stolen, {FORGED!r}.encode())
    except OSError:
        pass
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(target, sig)
        except OSError:
            pass
    libc.ptrace(16, target, 0, 0)  # PTRACE_ATTACH
    try:
        with open(f"/proc/{{target}}/fd/1", "w") as report:
            report.write({FORGED!r})
    except OSError:
        pass
print({FORGED!r})
print(1)
""",
    "cpp": r"""
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>
int main() {
    const char forged[] = "{\"version\": 2, \"cases\": []}";
    pid_t targets[] = {getppid(), 1};
    for (pid_t target : targets) {
        long pidfd = syscall(434, target, 0);  // pidfd_open
        if (pidfd >= 0) {
            long stolen = syscall(438, pidfd, 1, 0);  // pidfd_getfd
            if (stolen >= 0) write(stolen, forged, sizeof forged - 1);
        }
        kill(target, SIGSTOP);
        kill(target, SIGKILL);
        ptrace(PTRACE_ATTACH, target, nullptr, nullptr);
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/fd/1", target);
        int fd = open(path, O_WRONLY);
        if (fd >= 0) write(fd, forged, sizeof forged - 1);
    }
    puts(forged);
    puts("1");
}
""",
    "javascript": """
const { execFileSync } = require("child_process");
for (const target of [process.ppid, 1]) {
  for (const sig of ["-STOP", "-KILL"]) {
    try { execFileSync("kill", [sig, String(target)], { stdio: "ignore" }); } catch (e) {}
  }
  try { require("fs").writeFileSync(`/proc/${target}/fd/1`, '{"version": 2, "cases": []}'); } catch (e) {}
}
console.log('{"version": 2, "cases": []}');
console.log(1);
""",
    "java": """
public class Main {
  public static void main(String[] a) throws Exception {
    long parent = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(1L);
    for (long target : new long[] {parent, 1}) {
      for (String sig : new String[] {"-STOP", "-KILL"}) {
        try { new ProcessBuilder("kill", sig, Long.toString(target)).start().waitFor(); } catch (Exception e) {}
      }
      try (var out = new java.io.FileOutputStream("/proc/" + target + "/fd/1")) {
        out.write("{\\"version\\": 2, \\"cases\\": []}".getBytes());
      } catch (Exception e) {}
    }
    System.out.println("{\\"version\\": 2, \\"cases\\": []}");
    System.out.println(1);
  }
}
""",
}


@pytest.mark.parametrize("language", sorted(TAKEOVER))
def test_a_program_cannot_forge_its_report(run_program: RunProgram, language: str) -> None:
    # Given a program that attacks its supervisor and then prints a wrong answer
    run = run_program(
        TAKEOVER[language], language=language, test_cases=[{"stdin": "", "expected_output": "2"}]
    )
    # Then its own output is judged, wrong, with the service's own version and figures
    assert run.verdict is Verdict.WRONG_ANSWER, (run.stdout, run.stderr)
    assert run.stdout.splitlines()[-1] == "1"
    assert run.response.language_version not in ("", "forged")
    assert run.response.test_results is not None
    assert len(run.response.test_results) == 1


EXPECTED_HUNT = """
import os, re, sys
MARK = re.compile(rb"EXPECTED-[0-9a-f]{32}")
found = set()
def scan(data):
    found.update(MARK.findall(data))
def read(path, size=None):
    try:
        with open(path, "rb") as f:
            return f.read() if size is None else f.read(size)
    except OSError:
        return b""
scan(sys.stdin.buffer.read())
scan(b"\\0".join(k.encode() + b"=" + v.encode() for k, v in os.environ.items()))
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for name in ("environ", "cmdline"):
        scan(read(f"/proc/{pid}/{name}"))
    maps = read(f"/proc/{pid}/maps").decode(errors="replace")
    try:
        mem = open(f"/proc/{pid}/mem", "rb")
    except OSError:
        continue
    for line in maps.splitlines():
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        try:
            mem.seek(start); scan(mem.read(min(end - start, 1 << 24)))
        except (OSError, ValueError, OverflowError):
            pass
for root in ("/box", "/tmp", "/proc/1/root/box"):
    for folder, _, files in os.walk(root):
        for name in files:
            scan(read(os.path.join(folder, name), 1 << 20))
print(len(found), *sorted(found))
"""


def test_expected_outputs_never_enter_the_sandbox(run_program: RunProgram) -> None:
    # Given two cases whose expected outputs are secrets the program hunts for everywhere it can read
    secrets = [f"EXPECTED-{uuid.uuid4().hex}" for _ in range(2)]
    cases = [{"stdin": "", "expected_output": secret} for secret in secrets]
    # When it runs
    run = run_program(EXPECTED_HUNT, test_cases=cases)
    # Then it found nothing, in either case
    assert run.response.test_results is not None
    for result in run.response.test_results:
        assert result.stdout.strip() == "0", result.stdout
        assert all(secret not in result.stdout for secret in secrets)


FREEZE_AND_LOOP = {
    "python": "import os, signal\nfor pid in {os.getppid(), 1}:\n    try:\n        os.kill(pid, signal.SIGSTOP)\n"
    "    except OSError:\n        pass\nwhile True:\n    pass\n",
    "cpp": "#include <csignal>\n#include <unistd.h>\nint main() { kill(getppid(), SIGSTOP); kill(1, SIGSTOP);"
    " volatile unsigned long i = 0; for (;;) ++i; }",
}


@pytest.mark.parametrize("language", sorted(FREEZE_AND_LOOP))
def test_a_frozen_parent_does_not_delay_the_time_limit(run_program: RunProgram, language: str) -> None:
    # Given a program that stops whatever it can find above it, then loops, with a 1 s limit
    started_s = time.monotonic()
    run = run_program(FREEZE_AND_LOOP[language], language=language, timeout=1)
    # Then it is killed from outside at its own deadline: TLE well inside timeout + 2 s after it started
    assert run.verdict is Verdict.TIME_LIMIT_EXCEEDED
    assert run.response.execution_time < 1 + 2
    assert run.task.compile is not None or time.monotonic() - started_s < 1 + 2 + 1


CHILDREN_OVER_THE_LIMIT = r"""
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
int main() {
    for (int i = 0; i < 12; ++i) {
        if (fork() == 0) {
            // volatile: the compiler may not elide an allocation nobody reads
            volatile char* block = static_cast<char*>(malloc(20 << 20));
            if (block == nullptr) return 3;
            for (int offset = 0; offset < (20 << 20); offset += 4096) block[offset] = 1;
            sleep(3);
            return 0;
        }
    }
    sleep(2);
    puts("ok");
}
"""


def test_the_memory_limit_covers_every_process_of_the_run(run_program: RunProgram) -> None:
    # Given a 16 MB limit and a program whose 12 children hold 20 MB each (each within its own RLIMIT_AS)
    run = run_program(CHILDREN_OVER_THE_LIMIT, language="cpp", memory_limit_mb=16)
    # Then the run is over its limit, whichever process the kernel killed
    assert run.verdict is Verdict.MEMORY_LIMIT_EXCEEDED, (run.stdout, run.stderr)


UNREAPED_CPU = """
import os, time
child = os.fork()
if child == 0:
    end = time.process_time() + 1.5
    while time.process_time() < end:
        pass
    os._exit(0)
# Wait for the child to become a zombie, without ever reaping it.
while open(f"/proc/{child}/stat").read().split(")")[1].split()[0] != "Z":
    time.sleep(0.05)
print("ok")
"""


def test_cpu_time_counts_children_never_waited_for(run_program: RunProgram) -> None:
    run = run_program(UNREAPED_CPU)
    assert run.verdict is Verdict.ACCEPTED
    assert run.response.cpu_time >= 1.4


SELF_KILL = {
    "python": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "cpp": "#include <csignal>\nint main() { raise(SIGKILL); }",
}


@pytest.mark.parametrize("language", sorted(SELF_KILL))
def test_a_self_inflicted_sigkill_is_not_a_memory_verdict(run_program: RunProgram, language: str) -> None:
    run = run_program(SELF_KILL[language], language=language)
    assert (run.verdict, run.response.signal) == (Verdict.RUNTIME_ERROR, "SIGKILL")


def _concurrently(run_program: RunProgram, codes: list[str]) -> list[Run]:
    """Run the programs at the same time (each on its own thread) and return their runs in order."""
    runs: list[Run | None] = [None] * len(codes)

    def one(index: int) -> None:
        runs[index] = run_program(codes[index])

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(run is not None for run in runs)
    return [run for run in runs if run is not None]


KEYRING = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
# add_key("user", "probe", "secret", 6, KEY_SPEC_USER_KEYRING): the per-uid keyring runs once shared
key = libc.syscall(248, b"user", b"probe", b"secret", 6, -4)
print(key, ctypes.get_errno())
"""


def test_keyrings_are_out_of_reach(run_program: RunProgram) -> None:
    import errno

    run = run_program(KEYRING)
    assert run.stdout.split() == ["-1", str(errno.EPERM)]


PIPE_HOARDER = """
import os, time
pipes = []
try:
    for _ in range(1200):
        pipes.append(os.pipe())
except OSError:
    pass
print(len(pipes))
time.sleep(3)
"""
PIPE_SIZE = """
import fcntl, os, time
time.sleep(1)
r, w = os.pipe()
print(fcntl.fcntl(w, 1032))  # F_GETPIPE_SZ
"""


def test_one_runs_pipes_do_not_shrink_anothers(run_program: RunProgram) -> None:
    # Given a run that holds as many pipes as it can while another run opens one
    hoarder, other = _concurrently(run_program, [PIPE_HOARDER, PIPE_SIZE])
    # Then the other's pipe has the full default size: the per-user pipe quota is not shared
    assert int(hoarder.stdout) > 100
    assert int(other.stdout) == 65536


def test_the_mount_table_shows_no_service_path(run_program: RunProgram) -> None:
    run = run_program(
        "import os\nprint(open('/proc/self/mountinfo').read())\n"
        "for path in ('/usr/local/etc', '/usr/local/bin', '/usr/local/lib', '/opt/runner'):\n"
        "    print(path, os.path.exists(path))\n"
    )
    assert "/work" not in run.stdout
    assert "runners" not in run.stdout
    for path in ("/usr/local/etc", "/usr/local/bin", "/usr/local/lib", "/opt/runner"):
        assert f"{path} False" in run.stdout
