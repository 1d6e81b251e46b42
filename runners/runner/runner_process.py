"""Run one command under rlimits with a wall-clock kill, feeding stdin and capturing its output.

Standard library only: part of the runner program, PID 1 of every runner container. It starts once per
request, so it avoids heavy imports (subprocess, selectors, dataclasses, typing: together ~10 ms of start-up).
The work is split by seam: runner_spawn starts the process (fork/exec, rlimits, PATH lookup, fd hygiene),
runner_pump pumps its pipes in one select.poll loop and captures the output, and runner_result holds what it
did.
"""

from __future__ import annotations

import os
import time

from runner_pump import Pump, kill_group
from runner_spawn import close_all, spawn

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


def start_process(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    stdin: bytes,
    timeout_s: float,
    rlimits: Sequence[tuple[int, int]],
    output_limit_bytes: int,
    merge_stderr: bool = False,
    stop: Callable[[int], None] = kill_group,
) -> Pump:
    """Start `argv` in its own session (raises OSError when it cannot); `finish()` the pump to collect it.

    `stop(pid)` kills what is left once the main process has exited or its deadline has passed.
    """
    started = time.monotonic()
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = (None, stdout_write) if merge_stderr else os.pipe()
    try:
        pid = spawn(argv, cwd=cwd, env=env, rlimits=rlimits, fds=(stdin_read, stdout_write, stderr_write))
    except BaseException:
        close_all(stdin_write, stdout_read, stderr_read)
        raise
    finally:
        close_all(stdin_read, stdout_write, None if merge_stderr else stderr_write)
    return Pump(
        pid,
        stdin=stdin,
        fds=(stdin_write, stdout_read, stderr_read),
        output_limit_bytes=output_limit_bytes,
        started=started,
        deadline=started + timeout_s,
        stop=stop,
    )
