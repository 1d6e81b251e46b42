"""Pure builder of the bubblewrap command line: deny by default, bind only what the toolchains need.

Nothing here touches the host; `build_bwrap_argv` is a function of its inputs (golden-tested). The sandbox
is set up completely, then waits on `--block-fd` for its task: the backend writes the program's files and
`.launch` into the box, sets the limits, and only then lets `/launch /box/.launch` exec the program (launch.py).
The same argv serves a sandbox started on demand and one started ahead of demand.

The test cluster's node agent starts a pod's containers with the same builder: no box, the pod's volumes as
`binds`, its own `command`, and the runner as PID 1 (`as_pid_1`), as in a container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from functions.backends.local.boxes import LAUNCH_FILE
from functions.core.protocol import PROGRAM_DIR

SANDBOX_HOSTNAME = "sandbox"
# The sandbox's own uid/gid inside its user namespace (what the program sees); the host uid behind it is
# leased per sandbox (uids.py).
SANDBOX_UID = 65534
SANDBOX_GID = 65534
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# Paths inside the sandbox: private tmpfs mounts, not the host's shared temp directories.
SANDBOX_TMP = "/tmp"  # noqa: S108
SANDBOX_SHM = "/dev/shm"  # noqa: S108
# Where the launcher (launch.c, built static) is bound read-only in every sandbox with a box.
SANDBOX_LAUNCHER = "/launch"

# System directories every toolchain needs, bound read-only when they exist on the host.
SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
# Hidden behind an empty tmpfs: what the host installed by hand (tools, configuration, credentials). A
# language that needs a part of it names that part in its language.json `sandbox_paths`.
MASKED_DIRS: tuple[str, ...] = ("/usr/local",)
# The /etc entries every toolchain reads (dynamic loader, `alternatives` symlinks, TLS config, time zone).
# Not the whole /etc: nothing of the host's accounts, hosts or configuration is visible by default.
ETC_ENTRIES: tuple[str, ...] = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl/openssl.cnf",
    "/etc/localtime",
)


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One host path to expose: a directory/file bound read-only, or a symlink re-created as is."""

    path: str
    symlink_target: str | None = None


@dataclass(frozen=True, slots=True)
class Bind:
    """A host directory shown at `target` (after the box), read-only unless `writable`."""

    source: str
    target: str
    writable: bool = False


@dataclass(frozen=True, slots=True)
class SandboxLayout:
    """Everything the argv depends on, resolved from the host beforehand (see `host_entries`)."""

    bwrap_path: str
    system_entries: tuple[HostEntry, ...]  # SYSTEM_DIRS that exist
    masked_dirs: tuple[str, ...]  # MASKED_DIRS that exist
    extra_entries: tuple[HostEntry, ...]  # ETC_ENTRIES and the languages' sandbox_paths that exist
    box_source: str | None  # host directory shown at PROGRAM_DIR (None: no box)
    box_writable: bool  # a compile step writes its output there
    launcher_source: str | None  # host path of the launcher binary, shown at SANDBOX_LAUNCHER
    tmp_size_mb: int
    shm_size_mb: int = 8
    env: Mapping[str, str] = field(default_factory=dict)
    binds: tuple[Bind, ...] = ()
    command: tuple[str, ...] = (SANDBOX_LAUNCHER, f"{PROGRAM_DIR}/{LAUNCH_FILE}")
    as_pid_1: bool = False  # the command is the PID namespace's init, not bwrap's own


def host_entries(paths: Sequence[str]) -> tuple[HostEntry, ...]:
    """Resolve which of `paths` exist on the host and whether they are symlinks (merged /usr)."""
    entries: list[HostEntry] = []
    for raw in dict.fromkeys(paths):
        path = Path(raw)
        if path.is_symlink():
            entries.append(HostEntry(raw, symlink_target=str(path.readlink())))
        elif path.exists():
            entries.append(HostEntry(raw))
    return tuple(entries)


def sandbox_env() -> dict[str, str]:
    """The environment bwrap starts the launcher with; the language's own variables come from .launch."""
    return {
        "PATH": SANDBOX_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": SANDBOX_TMP,
        "HOME": SANDBOX_TMP,
    }


def _entry_args(entries: Sequence[HostEntry]) -> list[str]:
    argv: list[str] = []
    for entry in entries:
        if entry.symlink_target is not None:
            argv += ["--symlink", entry.symlink_target, entry.path]
        else:
            argv += ["--ro-bind", entry.path, entry.path]
    return argv


def _bind_args(layout: SandboxLayout) -> list[str]:
    argv: list[str] = []
    if layout.box_source is not None:
        argv += ["--bind" if layout.box_writable else "--ro-bind", layout.box_source, PROGRAM_DIR]
    if layout.launcher_source is not None:
        argv += ["--ro-bind", layout.launcher_source, SANDBOX_LAUNCHER]
    for bind in layout.binds:
        argv += ["--bind" if bind.writable else "--ro-bind", bind.source, bind.target]
    return argv


def build_bwrap_argv(layout: SandboxLayout, *, block_fd: int, info_fd: int, seccomp_fd: int) -> list[str]:
    """bwrap argv: no network, no host env, read-only system, the box, and a private /tmp as the cwd."""
    argv = [
        layout.bwrap_path,
        # Fresh user, pid, net (only an unconfigured lo), ipc, uts and cgroup namespaces.
        "--unshare-all",
        "--unshare-user",
        # No nested user namespaces: they are the usual door to kernel attack surface.
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_GID),
        "--hostname", SANDBOX_HOSTNAME,
        "--cap-drop", "ALL",
        "--clearenv",
    ]  # fmt: skip
    for name, value in sorted(layout.env.items()):
        argv += ["--setenv", name, value]
    argv += _entry_args(layout.system_entries)
    for masked in layout.masked_dirs:
        argv += ["--tmpfs", masked]
    argv += _entry_args(layout.extra_entries)
    for masked in layout.masked_dirs:
        argv += ["--remount-ro", masked]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(layout.shm_size_mb * 1024 * 1024), "--tmpfs", SANDBOX_SHM,
        "--perms", "01777", "--size", str(layout.tmp_size_mb * 1024 * 1024), "--tmpfs", SANDBOX_TMP,
    ]  # fmt: skip
    argv += _bind_args(layout)
    argv += [
        # The root and /dev are bwrap's own tmpfs: read-only, so only /tmp and /dev/shm (both capped) and a
        # compile step's box take writes.
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--chdir", PROGRAM_DIR if layout.box_writable else SANDBOX_TMP,
        "--info-fd", str(info_fd),
        "--seccomp", str(seccomp_fd),
        "--block-fd", str(block_fd),
    ]  # fmt: skip
    if layout.as_pid_1:
        argv += ["--as-pid-1"]
    return [*argv, "--", *layout.command]
