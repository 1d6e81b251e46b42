"""Pure builder of the bubblewrap command line: deny by default, bind only what the toolchains need.

Nothing here touches the host; `build_bwrap_argv` is a function of its inputs (golden-tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_RUNNER_DIR = "/opt/runner"
SANDBOX_HOSTNAME = "sandbox"
# 65534 is `nobody` on Debian: no home, no files owned anywhere in the binds.
SANDBOX_UID = 65534
SANDBOX_GID = 65534
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# Paths inside the sandbox: private tmpfs mounts, not the host's shared temp directories.
SANDBOX_TMP = "/tmp"  # noqa: S108
SANDBOX_SHM = "/dev/shm"  # noqa: S108

# System directories every toolchain needs, bound read-only when they exist on the host.
SYSTEM_DIRS: tuple[str, ...] = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
# The few /etc entries the toolchains read (java's config, `alternatives` symlinks, the loader cache).
# Not the whole /etc: nothing of the host's accounts, hosts or configuration is visible by default.
ETC_ENTRIES: tuple[str, ...] = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/java-17-openjdk",
    "/etc/python3.11",
    "/etc/ssl/openssl.cnf",
    "/etc/localtime",
)


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One host path to expose: a directory/file bound read-only, or a symlink re-created as is."""

    path: str
    symlink_target: str | None = None


@dataclass(frozen=True, slots=True)
class SandboxLayout:
    """Everything the argv depends on, resolved from the host beforehand (see `host_entries`)."""

    bwrap_path: str
    python_path: str
    runner_dir: str
    system_entries: tuple[HostEntry, ...]
    tmp_size_mb: int
    shm_size_mb: int = 8
    env: Mapping[str, str] = field(default_factory=dict)
    python_flags: tuple[str, ...] = ("-E", "-s", "-S", "-B")


def host_entries(paths: Sequence[str]) -> tuple[HostEntry, ...]:
    """Resolve which of `paths` exist on the host and whether they are symlinks (merged /usr)."""
    entries: list[HostEntry] = []
    for raw in paths:
        path = Path(raw)
        if path.is_symlink():
            entries.append(HostEntry(raw, symlink_target=str(path.readlink())))
        elif path.exists():
            entries.append(HostEntry(raw))
    return tuple(entries)


def sandbox_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """The complete environment inside the sandbox: a fixed minimum plus what the caller passes."""
    env = {
        "PATH": SANDBOX_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": SANDBOX_TMP,
        "HOME": SANDBOX_TMP,
    }
    env.update(extra or {})
    return env


def build_bwrap_argv(layout: SandboxLayout) -> list[str]:
    """bwrap argv that runs `python runner.py` with no network, no host env and a read-only system."""
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
    for entry in layout.system_entries:
        if entry.symlink_target is not None:
            argv += ["--symlink", entry.symlink_target, entry.path]
        else:
            argv += ["--ro-bind", entry.path, entry.path]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(layout.shm_size_mb * 1024 * 1024), "--tmpfs", SANDBOX_SHM,
        "--perms", "01777", "--size", str(layout.tmp_size_mb * 1024 * 1024), "--tmpfs", SANDBOX_TMP,
        "--ro-bind", layout.runner_dir, SANDBOX_RUNNER_DIR,
        # The root and /dev are bwrap's own tmpfs: read-only, so only /tmp and /dev/shm (both capped)
        # take writes.
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        "--chdir", SANDBOX_TMP,
        "--",
        layout.python_path, *layout.python_flags, f"{SANDBOX_RUNNER_DIR}/runner.py",
    ]  # fmt: skip
    return argv
