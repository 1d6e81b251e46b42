"""Seccomp filters for the local sandbox: libseccomp compiles them, bubblewrap's `--seccomp FD` loads them.

Two profiles come from one rule table:

* `sandbox`, what every local sandbox gets: Docker's default profile plus the calls a judged program never
  needs that reach other processes, other runs or the host (tracing, inotify on shared binds, socket families
  other than unix, inet, inet6 and netlink-route, file handles, the clock's discipline), and the native ABI
  only: a call through a compatibility entry (int 0x80, x32, aarch32) is denied whole, since every toolchain
  builds native programs and those entries are old kernel attack surface. A filter for one ABI is also a
  third of the size, and the kernel prepares it in every sandbox's processes at each start.
* `runtime_default`, Docker's default profile alone: what Kubernetes' RuntimeDefault gives a pod (containerd
  ships the same list). It allows ptrace and process_vm_readv/writev, as Docker does on kernels >= 4.8.

Both allow by default and answer a denied call with EPERM, never a kill: the program decides what to do.
clone3 gets ENOSYS, as in Docker, because its flags sit in memory the filter cannot read; libc then falls
back to clone, whose namespace flags the filter checks. A deny list cannot name syscalls newer than the
installed libseccomp: such names are skipped, and `unknown_syscalls` lists them.

Use (one fresh fd per sandbox; bwrap reads it to the end once)::

    bpf = build_filter_bpf(SeccompProfile.SANDBOX)   # at start-up: raises SeccompUnavailableError
    with seccomp_fd(bpf) as fd:
        subprocess.Popen([bwrap, "--seccomp", str(fd), ...], pass_fds=(fd,))

`python -m functions.backends.local.seccomp_filter [PROFILE]` prints the compiled rules (libseccomp's PFC).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from types import ModuleType
from typing import Any, Literal, NamedTuple


class SeccompUnavailableError(RuntimeError):
    """libseccomp or its Python binding is missing: the sandbox must not start without its filter."""


class SeccompProfile(StrEnum):
    SANDBOX = "sandbox"
    RUNTIME_DEFAULT = "runtime_default"


class Op(IntEnum):
    """libseccomp's `scmp_compare` values (part of its stable ABI)."""

    NE = 1
    EQ = 4
    GT = 6
    MASKED_EQ = 7


class Cmp(NamedTuple):
    """One comparison of a syscall argument; MASKED_EQ holds when (argument & value) == match."""

    arg: int
    op: Op
    value: int
    match: int = 0


# One condition: comparisons that must all hold, on distinct arguments (libseccomp refuses two comparisons of
# the same argument in one rule). A rule denies when any of its conditions holds; `ALWAYS` is no comparison.
Condition = tuple[Cmp, ...]
ALWAYS: tuple[Condition, ...] = ((),)
_U64 = (1 << 64) - 1


class Rule(NamedTuple):
    names: tuple[str, ...]
    profiles: frozenset[SeccompProfile]
    when: tuple[Condition, ...] = ALWAYS
    answer: int = errno.EPERM  # the errno a denied call gets


BOTH = frozenset(SeccompProfile)
SANDBOX_ONLY = frozenset({SeccompProfile.SANDBOX})
DOCKER_ONLY = frozenset({SeccompProfile.RUNTIME_DEFAULT})


def _aligned_blocks(start: int, stop: int) -> Iterator[tuple[int, int]]:
    """[start, stop) as power-of-two aligned blocks: (first value, mask of the bits every member shares)."""
    while start < stop:
        size = start & -start if start else 1 << 64
        while size > stop - start:
            size >>= 1
        yield start, _U64 & ~(size - 1)
        start += size


def outside(arg: int, allowed: Iterable[int]) -> tuple[Condition, ...]:
    """Conditions matching every 64-bit value of `arg` except `allowed`, one comparison each."""
    values = sorted(set(allowed))
    conditions: list[Condition] = [(Cmp(arg, Op.GT, values[-1]),)]
    low = 0
    for value in values:
        conditions += [(Cmp(arg, Op.MASKED_EQ, mask, first),) for first, mask in _aligned_blocks(low, value)]
        low = value + 1
    return tuple(conditions)


def any_bit(arg: int, mask: int) -> tuple[Condition, ...]:
    """Conditions matching when `arg` has any bit of `mask` set."""
    bits = [1 << shift for shift in range(64) if mask >> shift & 1]
    return tuple((Cmp(arg, Op.MASKED_EQ, bit, bit),) for bit in bits)


# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: Docker's mask (CLONE_NEWTIME only exists
# for clone3 and unshare, both denied whole).
CLONE_NAMESPACE_FLAGS = 0x7E020000
# PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the 0xffffffff query: Docker's list. Anything else
# (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ...) weakens the memory protections of what it runs.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_ALG, AF_VSOCK = 1, 2, 10, 16, 38, 40
NETLINK_ROUTE = 0
# Only the families the toolchains use, and netlink only for NETLINK_ROUTE, which glibc's getifaddrs and
# AI_ADDRCONFIG read (node's os.networkInterfaces, Python's if_nameindex). AF_VSOCK reaches the hypervisor,
# AF_ALG the kernel's crypto code, AF_PACKET raw frames; none is needed to compile or run a program.
FOREIGN_SOCKET_FAMILY = (
    *outside(0, (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK)),
    (Cmp(0, Op.EQ, AF_NETLINK), Cmp(2, Op.NE, NETLINK_ROUTE)),
)

RULES: tuple[Rule, ...] = (
    # Kernel attack surface a container never needs; Docker's default denies all of these.
    Rule(("io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open", "userfaultfd",
          "lookup_dcookie", "fanotify_init", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules"), BOTH),
    # Keyrings are per host uid, not per sandbox: one run could read another's keys.
    Rule(("keyctl", "add_key", "request_key"), BOTH),
    Rule(("kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module",
          "get_kernel_syms", "query_module"), BOTH),
    Rule(("mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
          "move_mount", "open_tree", "mount_setattr", "open_by_handle_at", "quotactl", "quotactl_fd"), BOTH),
    Rule(("unshare", "setns", "sethostname", "setdomainname"), BOTH),
    Rule(("clone",), BOTH, any_bit(0, CLONE_NAMESPACE_FLAGS)),
    Rule(("clone3",), BOTH, answer=errno.ENOSYS),
    Rule(("personality",), BOTH, outside(0, PERSONALITIES)),
    Rule(("kcmp", "pidfd_getfd", "process_madvise"), BOTH),
    Rule(("swapon", "swapoff", "reboot", "acct", "vhangup", "syslog", "iopl", "ioperm", "clock_settime",
          "clock_settime64", "settimeofday", "stime"), BOTH),
    Rule(("get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind", "migrate_pages", "move_pages"),
         BOTH),
    # Obsolete calls outside Docker's allow list.
    Rule(("nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old", "afs_syscall", "tuxcall",
          "security", "getpmsg", "putpmsg", "vserver"), BOTH),
    Rule(("socket",), DOCKER_ONLY, ((Cmp(0, Op.EQ, AF_ALG),), (Cmp(0, Op.EQ, AF_VSOCK),))),
    # Reading another process: the program must not reach what supervises or reports on it.
    Rule(("ptrace", "process_vm_readv", "process_vm_writev"), SANDBOX_ONLY),
    # Kernel AIO contexts count against one host-wide limit (fs.aio-max-nr): one run could take them all and
    # leave none to the others (glibc's POSIX AIO uses threads, not these calls).
    Rule(("io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents"), SANDBOX_ONLY),
    # Watches on the shared read-only binds would see other runs and host commands start.
    Rule(("inotify_init", "inotify_init1", "inotify_add_watch"), SANDBOX_ONLY),
    # Docker leaves these open because their harmful halves need capabilities; a judged program needs neither
    # a handle naming a host inode nor the host's clock discipline.
    Rule(("name_to_handle_at", "adjtimex", "clock_adjtime", "clock_adjtime64"), SANDBOX_ONLY),
    Rule(("socket", "socketpair"), SANDBOX_ONLY, FOREIGN_SOCKET_FAMILY),
    # 32-bit x86 multiplexes sockets through socketcall, whose arguments sit in memory the filter cannot read.
    Rule(("socketcall",), SANDBOX_ONLY),
)  # fmt: skip

# Compatibility ABIs a native process can still enter (int 0x80, x32, aarch32): Docker's profile gives them
# the same rules; the sandbox's denies them.
_COMPAT_ARCHES = {"X86_64": ("X86", "X32"), "AARCH64": ("ARM",)}
_UNKNOWN_SYSCALL = -1  # libseccomp's __NR_SCMP_ERROR: a name this libseccomp does not know


def _binding() -> ModuleType:
    try:
        import pyseccomp  # noqa: PLC0415 - only the local backend needs libseccomp
    except (ImportError, OSError, RuntimeError) as exc:
        raise SeccompUnavailableError(
            "the local sandbox needs libseccomp (Debian: libseccomp2) and its Python binding pyseccomp "
            f"(pip install '.[local]'); it refuses to run programs without its seccomp filter: {exc}"
        ) from exc
    binding: ModuleType = pyseccomp
    return binding


def _new_filter(seccomp: ModuleType, arch: str | None, *, compat: bool, deny_errno: int) -> Any:
    """Allow by default; with `compat`, the same rules for the compatibility ABIs, else those are denied."""
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    arch_id = getattr(seccomp.Arch, arch) if arch else seccomp.system_arch()
    if arch_id != seccomp.system_arch():
        syscall_filter.add_arch(arch_id)
        syscall_filter.remove_arch(seccomp.Arch.NATIVE)
    native = next((name for name in _COMPAT_ARCHES if getattr(seccomp.Arch, name) == arch_id), "")
    if compat:
        for name in _COMPAT_ARCHES.get(native, ()):
            syscall_filter.add_arch(getattr(seccomp.Arch, name))
    else:
        syscall_filter.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ERRNO(deny_errno))
    # A binary tree over syscall numbers instead of a linear scan on every allowed call.
    syscall_filter.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    return syscall_filter


def compile_filter(
    profile: SeccompProfile,
    *,
    output: Literal["bpf", "pfc"] = "bpf",
    arch: str | None = None,
    deny_errno: int = errno.EPERM,
) -> bytes:
    """The profile compiled by libseccomp: classic BPF for the kernel, or PFC (readable pseudo-code).

    `arch` (libseccomp's name: "X86_64", "AARCH64", ...) targets another platform than this one; `deny_errno`
    replaces EPERM so a test can tell the filter's answer from the kernel's own refusal.
    """
    seccomp = _binding()
    compat = profile is SeccompProfile.RUNTIME_DEFAULT
    syscall_filter = _new_filter(seccomp, arch, compat=compat, deny_errno=deny_errno)
    for rule in RULES:
        if profile not in rule.profiles:
            continue
        action = seccomp.ERRNO(deny_errno if rule.answer == errno.EPERM else rule.answer)
        for name in rule.names:
            number = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
            if number == _UNKNOWN_SYSCALL:
                continue
            for condition in rule.when:
                args = [seccomp.Arg(cmp.arg, int(cmp.op), cmp.value, cmp.match) for cmp in condition]
                syscall_filter.add_rule(action, number, *args)
    with tempfile.TemporaryFile() as out:
        (syscall_filter.export_bpf if output == "bpf" else syscall_filter.export_pfc)(out)
        out.seek(0)
        return out.read()


@functools.cache
def build_filter_bpf(profile: SeccompProfile = SeccompProfile.SANDBOX) -> bytes:
    """The profile's BPF program for this machine's architecture, compiled once per process."""
    return compile_filter(profile)


def unknown_syscalls() -> list[str]:
    """Names in the rule table the installed libseccomp does not know: no rule denies them."""
    seccomp = _binding()
    names = {name for rule in RULES for name in rule.names}
    return sorted(n for n in names if seccomp.resolve_syscall(seccomp.Arch.NATIVE, n) == _UNKNOWN_SYSCALL)


@contextmanager
def seccomp_fd(bpf: bytes) -> Iterator[int]:
    """A sealed, close-on-exec memfd holding `bpf` at offset 0, for `bwrap --seccomp FD` (pass it with
    `pass_fds`). Closed on exit; a bwrap started inside the block keeps its own copy."""
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(bpf)
        while view:
            view = view[os.write(fd, view) :]
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


if __name__ == "__main__":
    chosen = SeccompProfile(sys.argv[1] if len(sys.argv) > 1 else SeccompProfile.SANDBOX)
    sys.stdout.write(compile_filter(chosen, output="pfc").decode())
    sys.stdout.write(
        f"# not known to this libseccomp, so not denied: {' '.join(unknown_syscalls()) or '-'}\n"
    )
