"""The sandbox's first command, `sh /box/.launch`: lower the rlimits, set the language's variables, exec.

Written by the backend into the box before the sandbox is unblocked, so the same pre-started sandbox can run
any language; nothing of the user's runs before the `exec`. The sandbox lowers its own limits (always
allowed, and so never dependent on the service's privileges over another uid's process). Every word is
single-quoted: arguments are passed through verbatim, whatever characters they hold (never NUL, which the
core refuses).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


_BLOCK_BYTES = 512  # the unit of `ulimit -f` in POSIX shells


@dataclass(frozen=True, slots=True)
class ShellLimits:
    """rlimits set with `ulimit` (soft and hard) before the exec."""

    cpu_time_s: int
    file_size_bytes: int
    open_files: int
    address_space_bytes: int | None = None

    def lines(self) -> list[str]:
        lines = [
            "ulimit -c 0",
            f"ulimit -t {self.cpu_time_s}",
            f"ulimit -f {math.ceil(self.file_size_bytes / _BLOCK_BYTES)}",
            f"ulimit -n {self.open_files}",
        ]
        if self.address_space_bytes is not None:
            lines.append(f"ulimit -v {self.address_space_bytes // 1024}")
        return lines


def launch_script(
    argv: Sequence[str], env: Mapping[str, str], limits: ShellLimits, *, merge_stderr: bool = False
) -> str:
    if not argv:
        raise ValueError("nothing to launch")
    lines = ["set -e", *limits.lines(), "set +e"]
    for name, value in sorted(env.items()):
        if not _NAME.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        lines.append(f"export {name}={quote(value)}")
    redirect = " 2>&1" if merge_stderr else ""
    lines.append("exec " + " ".join(quote(word) for word in argv) + redirect)
    return "\n".join(lines) + "\n"
