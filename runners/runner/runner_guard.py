"""What keeps the program away from the runner, and each case away from the next.

Standard library only. In a pod the program runs as the runner's own uid in the runner's own container (a
`restricted` pod allows no other uid and no capability), so the runner relies on what the kernel grants a
process whatever its uid:
- it is PID 1 of its PID namespace: a signal whose action is the default never reaches it from inside the
  namespace, SIGKILL and SIGSTOP included. SIGINT and SIGTERM are set back to the default, so that Python's
  KeyboardInterrupt handler cannot be triggered from there either;
- it is non-dumpable (prctl PR_SET_DUMPABLE 0): a process without CAP_SYS_PTRACE can then neither ptrace it,
  nor open /proc/1/mem, /proc/1/environ or /proc/1/fd/*, nor pidfd_getfd one of its descriptors (its report
  pipe), nor process_vm_readv its memory.
After each case every other process of the namespace is killed (kill(-1) from PID 1) and reaped, so nothing a
case started outlives it. Outside PID 1 (a runtime that adds its own init) only the case's process group is
killed and the first protection is gone: the service's deadline then still bounds the run.
"""

from __future__ import annotations

import os
import signal

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def _prctl(option: int, value: int) -> int:
    try:
        # The _ctypes primitives cost ~0.4 ms to import; the ctypes package around them ~2 ms more.
        from _ctypes import call_function, dlopen, dlsym  # noqa: PLC0415

        libc = dlopen(None)  # type: ignore[arg-type]  # NULL: the process itself, as ctypes.CDLL(None)
        result: int = call_function(dlsym(libc, "prctl"), (option, value, 0, 0, 0))
    except (ImportError, AttributeError):
        import ctypes  # noqa: PLC0415 - only where the primitives are not there

        result = ctypes.CDLL(None).prctl(option, value, 0, 0, 0)
    return result


def protect() -> str | None:
    """Take the protections above; None once they hold, else why they do not (then run nothing)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        _prctl(PR_SET_DUMPABLE, 0)
        dumpable = _prctl(PR_GET_DUMPABLE, 0)
    except OSError as exc:
        return f"the runner cannot make itself non-dumpable: {exc}"
    if dumpable != 0:
        return "the runner cannot make itself non-dumpable (prctl PR_SET_DUMPABLE)"
    return None


def is_pid_1() -> bool:
    return os.getpid() == 1


def stop_everything(pid: int) -> None:
    """Kill every process of the namespace but the runner (from PID 1), else `pid`'s process group."""
    try:
        if is_pid_1():
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return  # nothing left to kill


def sweep() -> int:
    """Kill and reap whatever is left of a step; the largest ru_maxrss (KiB) among the reaped."""
    if is_pid_1():
        stop_everything(0)
    largest_kb = 0
    while True:
        try:
            # From PID 1 everything else is dead or dying: wait for each. Elsewhere only collect zombies.
            pid, _status, rusage = os.wait4(-1, 0 if is_pid_1() else os.WNOHANG)
        except ChildProcessError:
            return largest_kb
        if pid == 0:
            return largest_kb
        largest_kb = max(largest_kb, rusage.ru_maxrss)
