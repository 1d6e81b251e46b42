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
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from functions.backends.local.sandbox import HostSetup, Launch, PhaseLimits, Sandbox
from functions.backends.local.seccomp_filter import (
    RULES,
    SeccompProfile,
    SeccompUnavailableError,
    build_filter_bpf,
    compile_filter,
    seccomp_fd,
)
from functions.core.protocol import b64decode
from tests.sandbox_support import sandbox_host

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
    "kernel-aio": ("io_setup", "io_submit", "io_getevents", "io_destroy"),
    # Compatibility ABIs, whatever the call: every toolchain builds native programs.
    "compat-abi": ("i386:getpid", "x32:getpid"),
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
    "io_setup", "io_submit", "io_getevents", "io_destroy",
    "socket(AF_PACKET)", "socket(AF_NETLINK,KOBJECT_UEVENT)", "socket(AF_UNSPEC)", "socket(AF_UNIX|1<<32)",
    "socketpair(AF_VSOCK)", "i386:getpid", "x32:getpid",
})  # fmt: skip

Probe = Callable[[str], dict[str, str]]


PROBE_LIMITS = PhaseLimits(
    timeout_s=60.0, memory_limit_mb=256, max_processes=16, file_size_bytes=1 << 20, output_limit_bytes=1 << 20
)


@pytest.fixture(scope="session")
def probe_binary() -> bytes:
    with tempfile.TemporaryDirectory(prefix="seccomp-probe-") as directory:
        binary = Path(directory) / "probe"
        gcc = ["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(PROBE_SOURCE)]
        subprocess.run(gcc, check=True, capture_output=True, timeout=120)
        return binary.read_bytes()


@pytest.fixture(scope="session")
def host() -> Iterator[HostSetup]:
    with sandbox_host() as host:
        yield host


def _answer(code: str) -> str:
    if code == "skip":
        return code
    number = int(code)
    return {0: "ok", MARKER_ERRNO: "marker"}.get(number) or errno.errorcode.get(number, code)


@pytest.fixture(scope="session")
def probe(host: HostSetup, probe_binary: bytes) -> Probe:
    """Answers of every probe call in a real sandbox under one filter: `sandbox` (what every sandbox gets),
    `sandbox-marked`, `runtime_default-marked`."""
    filters = {
        "sandbox": lambda: host.seccomp_bpf,
        "sandbox-marked": lambda: compile_filter(SANDBOX, deny_errno=MARKER_ERRNO),
        "runtime_default-marked": lambda: compile_filter(RUNTIME_DEFAULT, deny_errno=MARKER_ERRNO),
    }

    @cache
    def answers(variant: str) -> dict[str, str]:
        sandbox = Sandbox(replace(host, seccomp_bpf=filters[variant]()), writable_box=False)
        try:
            sandbox.box.write_file("probe", probe_binary, mode=0o555)
            report = sandbox.run(Launch(("/box/probe",)), PROBE_LIMITS)
        finally:
            sandbox.close()
        stdout = b64decode(report.stdout.data_b64).decode()
        assert report.exit_code == 0, b64decode(report.stderr.data_b64)
        lines = (line.rsplit(" ", 1) for line in stdout.splitlines())
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


@pytest.mark.parametrize(
    ("arch", "native", "compat"),
    [("X86_64", "x86_64", ("x86", "x32")), ("AARCH64", "aarch64", ("arm",))],
    ids=["x86_64", "aarch64"],
)
def test_the_sandbox_filter_denies_compat_abis_whole_and_docker_covers_them(
    arch: str, native: str, compat: tuple[str, ...]
) -> None:
    # Given each profile compiled for a 64-bit platform
    sandbox = compile_filter(SANDBOX, output="pfc", arch=arch).decode()
    docker = compile_filter(RUNTIME_DEFAULT, output="pfc", arch=arch).decode()
    # Then the sandbox's has rules for the native ABI only, and answers every other ABI with EPERM
    assert f"# filter for arch {native} " in sandbox
    assert not any(f"# filter for arch {name} " in sandbox for name in compat)
    assert sandbox.split("# invalid architecture action")[1].split()[:2] == ["action", "ERRNO(1);"]
    # ...while Docker's repeats its rules for each compatibility ABI, as a pod gets it
    assert all(f"# filter for arch {name} " in docker for name in compat)
    assert '# filter for syscall "keyctl"' in docker


def test_each_syscall_has_one_rule_per_profile() -> None:
    for profile in SeccompProfile:
        names = [name for rule in RULES if profile in rule.profiles for name in rule.names]
        assert len(names) == len(set(names)), profile
