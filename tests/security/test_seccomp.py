"""The local sandbox's seccomp filter, proven inside bubblewrap with raw syscalls and the real toolchains.

`seccomp_probe.c` calls each syscall the filter denies, raw and with arguments that change nothing even when
a call gets through, and prints "<probe> <errno>". It runs in bwrap (as an unprivileged host uid) with:

* the `sandbox` filter: every denied call answers EPERM;
* the same filter compiled with a marker errno no syscall returns: every denied call answers the marker, so
  the filter answered it, not the kernel's own refusal (many calls also need capabilities the sandbox lacks);
* `runtime_default` (marker build): Docker's list, which lets ptrace and process_vm_readv through.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from runner_workdir import expand

from functions.backends.local.bwrap import (
    ETC_ENTRIES,
    SANDBOX_RUNNER_DIR,
    SYSTEM_DIRS,
    SandboxLayout,
    build_bwrap_argv,
    host_entries,
    sandbox_env,
)
from functions.backends.local.seccomp_filter import (
    RULES,
    SeccompProfile,
    SeccompUnavailableError,
    build_filter_bpf,
    compile_filter,
    seccomp_fd,
)
from functions.core.languages import load_registry
from functions.settings import Settings

pytestmark = [pytest.mark.sandbox]

PROBE_SOURCE = Path(__file__).with_name("seccomp_probe.c")
MARKER_ERRNO = 4000  # above every errno the kernel defines, below MAX_ERRNO
SANDBOX = SeccompProfile.SANDBOX
RUNTIME_DEFAULT = SeccompProfile.RUNTIME_DEFAULT

DENIED: dict[str, tuple[str, ...]] = {
    "io_uring": ("io_uring_setup", "io_uring_enter", "io_uring_register"),
    "kernel-interfaces": ("bpf", "perf_event_open", "userfaultfd", "lookup_dcookie", "fanotify_init"),
    "keyrings": ("keyctl", "add_key", "request_key", "i386:keyctl"),
    "kernel-code": ("kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module"),
    "mounts": ("mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
               "move_mount", "open_tree", "mount_setattr"),
    "file-handles": ("open_by_handle_at", "name_to_handle_at"),
    "quota-and-swap": ("quotactl", "quotactl_fd", "swapon", "swapoff"),
    "namespaces": ("unshare(0)", "setns", "clone(CLONE_NEWUSER)", "clone(CLONE_NEWNS)", "clone(CLONE_NEWPID)",
                   "clone(CLONE_NEWNET)", "clone(CLONE_NEWIPC)", "clone(CLONE_NEWUTS)",
                   "clone(CLONE_NEWCGROUP)", "sethostname", "setdomainname"),
    "tracing": ("ptrace(PEEKDATA,parent)", "process_vm_readv(self)", "process_vm_writev(nothing)",
                "pidfd_getfd", "kcmp", "process_madvise"),
    "personality": ("personality(READ_IMPLIES_EXEC)", "personality(ADDR_NO_RANDOMIZE)", "personality(PER_BSD)",
                    "personality(PER_LINUX|1<<32)"),
    "host-admin": ("reboot", "acct", "vhangup", "syslog", "iopl", "ioperm"),
    "clock": ("clock_settime", "settimeofday", "adjtimex", "clock_adjtime"),
    "memory-policy": ("get_mempolicy", "set_mempolicy", "mbind", "migrate_pages", "move_pages"),
    "obsolete": ("nfsservctl", "uselib", "ustat", "sysfs"),
    "inotify": ("inotify_init", "inotify_init1", "inotify_add_watch"),
    "socket-families": ("socket(AF_VSOCK)", "socket(AF_PACKET)", "socket(AF_ALG)",
                        "socket(AF_NETLINK,KOBJECT_UEVENT)", "socket(AF_UNSPEC)", "socket(AF_UNIX|1<<32)",
                        "socketpair(AF_VSOCK)", "i386:socket(AF_VSOCK)", "i386:socketcall(SOCKET,AF_VSOCK)"),
}  # fmt: skip
ALLOWED = ("clone(fork)", "personality(PER_LINUX)", "personality(PER_LINUX32)", "personality(UNAME26)",
           "personality(query)", "socket(AF_UNIX)", "socket(AF_INET)", "socket(AF_INET6)",
           "socket(AF_NETLINK,ROUTE)", "socketpair(AF_UNIX)")  # fmt: skip
# What Docker's profile lets through and the sandbox does not.
RUNTIME_DEFAULT_ALLOWS = frozenset({
    "ptrace(PEEKDATA,parent)", "process_vm_readv(self)", "process_vm_writev(nothing)", "name_to_handle_at",
    "adjtimex", "clock_adjtime", "inotify_init", "inotify_init1", "inotify_add_watch",
    "socket(AF_PACKET)", "socket(AF_NETLINK,KOBJECT_UEVENT)", "socket(AF_UNSPEC)", "socket(AF_UNIX|1<<32)",
    "socketpair(AF_VSOCK)",
})  # fmt: skip

Probe = Callable[[str], dict[str, str]]


@dataclass(frozen=True, slots=True)
class Bwrap:
    """bubblewrap as the local backend starts it (binds, namespaces, unprivileged host uid), any command."""

    argv_head: tuple[str, ...]

    def run(
        self, command: list[str], bpf: bytes, timeout_s: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        with seccomp_fd(bpf) as fd:
            argv = [*self.argv_head, "--seccomp", str(fd), "--", *command]
            return subprocess.run(
                argv, capture_output=True, text=True, pass_fds=(fd,), timeout=timeout_s, check=False
            )


def _readable_by_all(*paths: Path) -> None:
    """bwrap runs as an unprivileged host uid: what it binds must be readable (and runnable) by others."""
    for path in paths:
        path.chmod(0o755)


@pytest.fixture(scope="session")
def sandbox_files() -> Iterator[Path]:
    """A directory the sandbox sees read-only at SANDBOX_RUNNER_DIR: the compiled probe, then programs."""
    directory = Path(tempfile.mkdtemp(prefix="seccomp-probe-"))
    try:
        gcc = ["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(directory / "probe"), str(PROBE_SOURCE)]
        subprocess.run(gcc, check=True, capture_output=True, timeout=120)
        _readable_by_all(directory, directory / "probe")
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture(scope="session")
def bwrap(sandbox_files: Path) -> Bwrap:
    settings = Settings()
    if not settings.local_bwrap_path.exists():
        pytest.skip("bubblewrap is not installed")
    layout = SandboxLayout(
        bwrap_path=str(settings.local_bwrap_path),
        python_path=str(settings.sandbox_python),
        runner_dir=str(sandbox_files),
        system_entries=host_entries((*SYSTEM_DIRS, *ETC_ENTRIES)),
        tmp_size_mb=256,
        env=sandbox_env(None),
    )
    argv = build_bwrap_argv(layout)
    head = argv[: argv.index("--")]  # everything but the runner command
    if os.geteuid() == 0:
        uid, gid = str(settings.local_sandbox_host_uid), str(settings.local_sandbox_host_gid)
        assert "0" not in (uid, gid), "the sandbox must never be host root underneath"
        drop = [str(settings.local_setpriv_path), "--reuid", uid, "--regid", gid, "--clear-groups", "--"]
        head = [*drop, *head]
    return Bwrap(tuple(head))


def _answer(code: str) -> str:
    if code == "skip":
        return code
    number = int(code)
    return {0: "ok", MARKER_ERRNO: "marker"}.get(number) or errno.errorcode.get(number, code)


@pytest.fixture(scope="session")
def probe(bwrap: Bwrap) -> Probe:
    """Answers of every probe call under one filter: `sandbox`, `sandbox-marked`, `runtime_default-marked`."""
    filters = {
        "sandbox": lambda: build_filter_bpf(SANDBOX),
        "sandbox-marked": lambda: compile_filter(SANDBOX, deny_errno=MARKER_ERRNO),
        "runtime_default-marked": lambda: compile_filter(RUNTIME_DEFAULT, deny_errno=MARKER_ERRNO),
    }

    @cache
    def answers(variant: str) -> dict[str, str]:
        result = bwrap.run([f"{SANDBOX_RUNNER_DIR}/probe"], filters[variant]())
        assert result.returncode == 0, result.stderr
        lines = (line.rsplit(" ", 1) for line in result.stdout.splitlines())
        return {name: _answer(code) for name, code in lines}

    return answers


def _present(answers: dict[str, str], names: tuple[str, ...]) -> list[str]:
    """The calls this architecture has (the probe prints "skip" for the others)."""
    present = [name for name in names if answers[name] != "skip"]
    assert present, f"no call of {names} exists here"
    return present


# --- what the sandbox filter denies and allows -------------------------------------------------------------


@pytest.mark.parametrize("family", DENIED)
def test_sandbox_filter_denies_with_eperm(probe: Probe, family: str) -> None:
    # Given the probe in a sandbox with the filter
    names = _present(probe("sandbox"), DENIED[family])
    # When it calls each syscall of the family, Then each call fails with EPERM...
    assert {name: probe("sandbox")[name] for name in names} == dict.fromkeys(names, "EPERM")
    # ...and that EPERM is the filter's: built with a marker errno, the filter answers with the marker
    assert {name: probe("sandbox-marked")[name] for name in names} == dict.fromkeys(names, "marker")


def test_clone3_answers_enosys_so_libc_falls_back_to_clone(probe: Probe) -> None:
    # Given clone3, whose flags sit in memory the filter cannot read
    # Then both profiles answer ENOSYS (as Docker does), and libc's fallback is plain clone
    assert probe("sandbox")["clone3"] == "ENOSYS"
    assert probe("runtime_default-marked")["clone3"] == "ENOSYS"
    assert probe("sandbox")["clone(fork)"] == "ok"


@pytest.mark.parametrize("call", ALLOWED)
def test_sandbox_filter_allows_what_toolchains_use(probe: Probe, call: str) -> None:
    # Given a call the toolchains need (fork, the default personalities, unix/inet/netlink-route sockets)
    # Then it succeeds under the filter
    assert probe("sandbox")[call] == "ok"


def test_every_probe_call_has_an_expectation(probe: Probe) -> None:
    expected = {name for names in DENIED.values() for name in names} | set(ALLOWED) | {"clone3"}
    assert set(probe("sandbox")) == expected


# --- runtime_default: Docker's list, as a Kubernetes pod gets it -------------------------------------------


@pytest.mark.parametrize("call", ["ptrace(PEEKDATA,parent)", "process_vm_readv(self)"])
def test_runtime_default_lets_tracing_through(probe: Probe, call: str) -> None:
    # Given Docker's profile, which allows tracing on kernels >= 4.8
    # Then the call reaches the kernel there (ESRCH: not a tracer of the parent; ok: reading itself)...
    assert probe("runtime_default-marked")[call] in {"ESRCH", "ok"}
    # ...while the sandbox's filter denies it
    assert probe("sandbox")[call] == "EPERM"


@pytest.mark.parametrize("family", DENIED)
def test_runtime_default_denies_dockers_list(probe: Probe, family: str) -> None:
    answers = probe("runtime_default-marked")
    names = _present(answers, DENIED[family])
    denied = {name: answers[name] == "marker" for name in names}
    assert denied == {name: name not in RUNTIME_DEFAULT_ALLOWS for name in names}


# --- every language still works under the filter -----------------------------------------------------------

PYTHON = """
import subprocess, sys, threading
results = []
threads = [threading.Thread(target=results.append, args=(i,)) for i in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
child = subprocess.run([sys.executable, "-c", "print(42)"], capture_output=True, text=True, check=True)
print("threads", sorted(results), "subprocess", child.stdout.strip())
"""
JAVASCRIPT = """
const { Worker } = require("node:worker_threads");
const { execFileSync } = require("node:child_process");
const worker = new Worker('require("node:worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
worker.on("message", (value) => {
  const child = execFileSync(process.execPath, ["-e", "process.stdout.write('42')"]).toString();
  console.log(`worker ${value} subprocess ${child}`);
  worker.terminate();
});
"""
JAVA = """
import java.util.concurrent.*;
import java.util.stream.IntStream;
public class Main {
  public static void main(String[] args) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4);
    Future<Integer> value = pool.submit(() -> 6 * 7);
    int sum = IntStream.rangeClosed(1, 1000).parallel().sum();
    System.out.println("thread " + value.get() + " parallel " + sum);
    pool.shutdown();
  }
}
"""
CPP = r"""
#include <future>
#include <iostream>
#include <thread>
int main() {
  int value = 0;
  std::thread worker([&value] { value = 6 * 7; });
  worker.join();
  auto sum = std::async(std::launch::async, [] { return 500500; });
  std::cout << "thread " << value << " async " << sum.get() << "\n";
}
"""
# language -> (program using threads, and child processes where the language makes it easy; its output)
PROGRAMS: dict[str, tuple[str, str]] = {
    "python": (PYTHON, "threads [0, 1, 2, 3] subprocess 42\n"),
    "javascript": (JAVASCRIPT, "worker 42 subprocess 42\n"),
    "java": (JAVA, "thread 42 parallel 500500\n"),
    "cpp": (CPP, "thread 42 async 500500\n"),
}


@pytest.mark.parametrize("language", PROGRAMS)
def test_language_compiles_and_runs_under_the_filter(
    bwrap: Bwrap, sandbox_files: Path, language: str
) -> None:
    # Given a program using threads (and child processes where the language makes it easy)
    spec = load_registry(Settings().runners_dir).get(language)
    source, expected = PROGRAMS[language]
    (sandbox_files / language).mkdir(exist_ok=True)
    (sandbox_files / language / spec.file_name).write_text(source, encoding="utf-8")
    _readable_by_all(sandbox_files / language, sandbox_files / language / spec.file_name)
    steps = [f"cp {SANDBOX_RUNNER_DIR}/{language}/{spec.file_name} ."]
    steps += [
        shlex.join(expand(argv, file_name=spec.file_name, memory_mb=256))
        for argv in (spec.compile, spec.run)
        if argv
    ]
    # When the language's own compile and run commands run in a sandbox with the filter
    result = bwrap.run(["/bin/sh", "-c", " && ".join(steps)], build_filter_bpf(SANDBOX))
    # Then the program works as it would without it
    assert (result.returncode, result.stdout) == (0, expected), result.stderr


# --- the module itself ---------------------------------------------------------------------------------------


def test_seccomp_fd_holds_the_program_sealed() -> None:
    bpf = build_filter_bpf(SANDBOX)
    assert len(bpf) % 8 == 0  # whole sock_filter instructions
    assert 0 < len(bpf) // 8 <= 4096  # the kernel's BPF_MAXINSNS
    with seccomp_fd(bpf) as fd:
        assert not os.get_inheritable(fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert os.pread(fd, len(bpf) + 1, 0) == bpf
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"\0", 0)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)


def test_missing_binding_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given pyseccomp cannot be imported (Python's own import blocker: uninstalling it from the shared
    # environment during a test is not an option)
    monkeypatch.setitem(sys.modules, "pyseccomp", None)
    # Then compiling a filter refuses with a message saying what to install
    with pytest.raises(SeccompUnavailableError, match=r"libseccomp.*pyseccomp"):
        compile_filter(SANDBOX)


def test_aarch64_filter_covers_aarch32() -> None:
    pfc = compile_filter(SANDBOX, output="pfc", arch="AARCH64").decode()
    assert "# filter for arch aarch64" in pfc
    assert "# filter for arch arm " in pfc
    assert '# filter for syscall "keyctl"' in pfc


def test_each_syscall_has_one_rule_per_profile() -> None:
    for profile in SeccompProfile:
        names = [name for rule in RULES if profile in rule.profiles for name in rule.names]
        assert len(names) == len(set(names)), profile
