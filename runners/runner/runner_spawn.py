"""Start one command the way subprocess.Popen(start_new_session=True, close_fds=True) would, with rlimits.

Standard library only: part of the runner program, PID 1 of every runner container. Processes are started
with os.fork/os.execve (subprocess costs several ms of start-up per request): the child gets its three pipes
as stdio and no other descriptor, default SIGPIPE/SIGXFSZ, a new session, oom_score_adj 1000 (the kernel's
OOM killer takes the program, never the runner, and no descendant can lower it again), the rlimits, and the
program found on its own PATH. An exec failure comes back to the parent as the same OSError subprocess would
raise.
"""

# pathlib costs ~2 ms of start-up per request; os and os.path do the same job here.
# ruff: noqa: PTH118, PTH120, PTH208

from __future__ import annotations

import errno
import math
import os
import resource
import signal

TYPE_CHECKING = False  # typing itself costs ~1.5 ms to import; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn

OPEN_FILES_LIMIT = 256
EXEC_FAILED_EXIT_CODE = 255  # the forked child's exit code when it could not exec
OOM_SCORE_ADJ = b"1000"  # the first to go when its container runs out of memory


class Limits:
    """The rlimits and wall-clock timeout of one process (group)."""

    __slots__ = ("address_space_bytes", "file_size_bytes", "timeout_s")

    def __init__(
        self, *, timeout_s: float, file_size_bytes: int, address_space_bytes: int | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.file_size_bytes = file_size_bytes
        self.address_space_bytes = address_space_bytes

    def rlimits(self) -> list[tuple[int, int]]:
        # No RLIMIT_NPROC: it counts every process of the uid on the node, so in a pod it would let one run
        # starve every other run pod there; the process count is the node's pod pids limit (docs/).
        settings = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_FSIZE, self.file_size_bytes),
            (resource.RLIMIT_NOFILE, OPEN_FILES_LIMIT),
            (resource.RLIMIT_CPU, math.ceil(self.timeout_s) + 1),
        ]
        if self.address_space_bytes is not None:
            settings.append((resource.RLIMIT_AS, self.address_space_bytes))
        return settings


def spawn(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    rlimits: Sequence[tuple[int, int]],
    fds: tuple[int, int, int],
) -> int:
    """fork + exec as subprocess.Popen(start_new_session=True, close_fds=True, preexec_fn=rlimits) does.

    An exec failure comes back through a close-on-exec pipe and is raised here as the same OSError
    (e.g. FileNotFoundError: [Errno 2] No such file or directory: 'g++').
    """
    args = [str(arg) for arg in argv]
    program = args[0]
    if os.path.dirname(program):
        candidates = [program]
    else:  # searched on the child's PATH, as subprocess does
        candidates = [
            os.path.join(folder, program) for folder in env.get("PATH", os.defpath).split(os.pathsep)
        ]
    child_env = dict(env)
    max_fd = os.sysconf("SC_OPEN_MAX")
    error_read, error_write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            _child(candidates, args, cwd, child_env, rlimits, fds, error_write, max_fd)
        os.close(error_write)
        error_write = -1
        failure = _read_all(error_read)
    finally:
        close_all(error_read, error_write if error_write >= 0 else None)
    if failure:
        os.waitpid(pid, 0)
        stage, _, number = failure.decode("ascii", errors="replace").partition(":")
        code = int(number) if number.isdigit() else 0
        filename = cwd if stage == "chdir" else program
        raise OSError(
            code, os.strerror(code) if code else f"the child failed before exec ({stage})", filename
        )
    return pid


def _child(  # noqa: PLR0917 - called once, right after fork
    candidates: list[str],
    args: list[str],
    cwd: str,
    env: dict[str, str],
    rlimits: Sequence[tuple[int, int]],
    fds: tuple[int, int, int],
    error_write: int,
    max_fd: int,
) -> NoReturn:
    """Between fork and exec. Never returns: exec, or report the failure and _exit."""
    stage = "setup"
    try:
        _install_std_fds(fds)
        stage = "chdir"
        os.chdir(cwd)
        stage = "setup"
        # Python ignores these at start-up; the program gets the defaults (SIGXFSZ is how a file limit hits).
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        _close_inherited_fds(keep=error_write, max_fd=max_fd)  # before the limits: it allocates a little
        os.setsid()
        _raise_oom_score()
        for which, value in rlimits:
            _lower_limit(which, value)
        stage = "exec"
        _exec_first(candidates, args, env)
    except BaseException as exc:  # noqa: BLE001 - whatever happened, the parent must hear of it
        code = exc.errno if isinstance(exc, OSError) and exc.errno else 0
        try:
            os.write(error_write, f"{stage}:{code}".encode())
        finally:
            os._exit(EXEC_FAILED_EXIT_CODE)
    os._exit(EXEC_FAILED_EXIT_CODE)


def _install_std_fds(fds: tuple[int, int, int]) -> None:
    stdin_fd, stdout_fd, stderr_fd = fds
    # A source fd that is itself 0-2 would be clobbered by an earlier dup2 (as in _posixsubprocess).
    if stdout_fd == 0:
        stdout_fd = os.dup(stdout_fd)
    while stderr_fd in (0, 1):
        stderr_fd = os.dup(stderr_fd)
    for target, source in enumerate((stdin_fd, stdout_fd, stderr_fd)):
        if source == target:
            os.set_inheritable(source, True)  # noqa: FBT003 - positional only
        else:
            os.dup2(source, target)


def _close_inherited_fds(*, keep: int, max_fd: int) -> None:
    """close_fds=True: the program gets only 0-2, whatever the runner itself inherited."""
    try:
        names = os.listdir("/proc/self/fd")  # few fds; never loops over a huge RLIMIT_NOFILE
    except OSError:
        os.closerange(3, keep)
        os.closerange(keep + 1, max(max_fd, keep + 1))
        return
    for name in names:
        fd = int(name)
        if fd >= 3 and fd != keep:  # noqa: PLR2004 - 0-2 are the program's stdio
            close_all(fd)


def _exec_first(candidates: list[str], args: list[str], env: dict[str, str]) -> None:
    """execve each PATH candidate; the error is the first that is not 'not found', else the last."""
    first_error: OSError | None = None
    last_error: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, args, env)  # noqa: S606 - an argv list, never a shell
        except OSError as exc:
            last_error = exc
            if first_error is None and exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                first_error = exc
    raise first_error or last_error or FileNotFoundError(errno.ENOENT, "no candidate", args[0])


def _raise_oom_score() -> None:
    """Best effort: without /proc the program is still limited, only no longer the OOM killer's first pick."""
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, OOM_SCORE_ADJ)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lower_limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    return data


def close_all(*fds: int | None) -> None:
    for fd in fds:
        if fd is None:
            continue
        try:
            os.close(fd)
        except OSError:
            continue
