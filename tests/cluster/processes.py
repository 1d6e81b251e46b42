"""Start, watch and stop the cluster's processes, each in its own process group.

A record of every process (pid + kernel start time) is kept so that `cluster-down`, running in
another Python process, stops exactly what `cluster-up` started and never a recycled pid. A process we
started is also waited for after it is stopped (its Popen object is kept), so none is left <defunct>.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

STOP_GRACE_S = 10.0
KILL_WAIT_S = 5.0
POLL_INTERVAL_S = 0.1
_PR_SET_PDEATHSIG = 1

# The processes this one started, by pid: `stop` waits on them, which reaps them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ClusterStartError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    log_path: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProcessRecord:
        return cls(
            name=str(data["name"]),
            pid=int(str(data["pid"])),
            start_ticks=int(str(data["start_ticks"])),
            log_path=str(data["log_path"]),
        )


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces), or None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> int | None:
    """When the process started (field 22), to tell it from a recycled pid."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def own_record(name: str, log_path: Path) -> ProcessRecord:
    """The record of this very process (the cluster supervisor lists itself with what it starts)."""
    pid = os.getpid()
    return ProcessRecord(name=name, pid=pid, start_ticks=_start_ticks(pid) or 0, log_path=str(log_path))


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the test session dies, the cluster dies with it.
    # SIGKILL, not SIGTERM: all components get it at once, and an apiserver whose etcd is gone hangs on SIGTERM.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    detach: bool,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start one component in a new session (its own process group), output to `log_path`.

    detach=False ties the process to this one (parent-death signal), for the pytest session;
    detach=True lets it outlive us, for `make cluster-up`.
    """
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            preexec_fn=None if detach else _die_with_parent,  # noqa: PLW1509 - only prctl, no locks
        )
    _CHILDREN[process.pid] = process
    ticks = _start_ticks(process.pid) or 0
    return process, ProcessRecord(name=name, pid=process.pid, start_ticks=ticks, log_path=str(log_path))


def _state(record: ProcessRecord) -> str | None:
    """The process's state letter ("Z" for a zombie), or None when gone or the pid was recycled."""
    fields = _stat_fields(record.pid)
    return fields[0] if fields is not None and int(fields[19]) == record.start_ticks else None


def exists(record: ProcessRecord) -> bool:
    """Running, or exited but not yet reaped by its parent (a zombie)."""
    return _state(record) is not None


def is_alive(record: ProcessRecord) -> bool:
    return _state(record) not in (None, "Z")


def wait_exit(record: ProcessRecord, timeout_s: float) -> bool:
    """Wait on a pidfd (no polling) until the process exits; True when it did."""
    try:
        pidfd = os.pidfd_open(record.pid)
    except ProcessLookupError:
        return True
    try:
        if not is_alive(record):
            return True
        ready, _, _ = select.select([pidfd], [], [], timeout_s)
        return bool(ready) or not is_alive(record)
    finally:
        os.close(pidfd)


def _reap(pid: int) -> None:
    # Our own children stay zombies until waited for; someone else's are reaped by their parent (the
    # cluster supervisor for `cluster-up`'s components).
    process = _CHILDREN.pop(pid, None)
    if process is None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return
    # Only a process stuck in the kernel outlives SIGKILL by that long.
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(KILL_WAIT_S)


def stop(record: ProcessRecord, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group, SIGKILL it after `grace_s`; a no-op for an exited or recycled pid."""
    if not is_alive(record):
        _reap(record.pid)
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, sig)
        if wait_exit(record, wait_s):
            break
    # Anything else left in its group (helpers it spawned) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pid, signal.SIGKILL)
    _reap(record.pid)


def log_tail(record: ProcessRecord, max_chars: int = 3000) -> str:
    try:
        text = Path(record.log_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return text[-max_chars:]


def wait_until(record: ProcessRecord, check: Callable[[], bool], what: str, timeout_s: float) -> None:
    """Poll `check` until it holds; fail fast, with the log tail, when the process has died."""
    deadline_s = time.monotonic() + timeout_s
    while not check():
        if not is_alive(record):
            raise ClusterStartError(f"{record.name} exited before {what}:\n{log_tail(record)}")
        if time.monotonic() > deadline_s:
            raise ClusterStartError(f"{record.name}: no {what} after {timeout_s} s:\n{log_tail(record)}")
        time.sleep(POLL_INTERVAL_S)


def https_ok(url: str, context: ssl.SSLContext) -> Callable[[], bool]:
    """A check that `url` answers 200 (readiness endpoints of the components)."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return check


def http_ok(url: str) -> Callable[[], bool]:
    return https_ok(url, ssl.create_default_context())
