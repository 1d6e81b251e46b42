"""The sandbox's first command, `/launch /box/.launch`: lower the rlimits, set the language's variables, exec.

`/launch` is `launch.c` beside this module, built static by `make setup` and bound read-only into every
sandbox; `.launch` is written by the backend into the box before the sandbox is unblocked, so the same
pre-started sandbox can run any language, and nothing of the user's runs before the `exec`. The sandbox
lowers its own limits (always allowed, and so never dependent on the service's privileges over another
uid's process). The file is a sequence of NUL-terminated records (launch.c documents them): words and
values pass through verbatim, whatever bytes they hold, except NUL, which the core refuses.
"""

from __future__ import annotations

import re
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What launch.c answers when the launch file is unusable (a shell answers 127 and 126 for the program).
LAUNCH_FILE_UNUSABLE_EXIT = 125


@dataclass(frozen=True, slots=True)
class LaunchLimits:
    """rlimits the launcher sets (soft and hard) before the exec."""

    cpu_time_s: int
    file_size_bytes: int
    open_files: int
    address_space_bytes: int | None = None

    def records(self) -> list[str]:
        limits = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_CPU, self.cpu_time_s),
            (resource.RLIMIT_FSIZE, self.file_size_bytes),
            (resource.RLIMIT_NOFILE, self.open_files),
        ]
        if self.address_space_bytes is not None:
            limits.append((resource.RLIMIT_AS, self.address_space_bytes))
        return [f"L{number} {value}" for number, value in limits]


def launch_file(
    argv: Sequence[str], env: Mapping[str, str], limits: LaunchLimits, *, merge_stderr: bool = False
) -> bytes:
    """What `/launch` reads: the limits, then the variables, then the argv it execs."""
    if not argv:
        raise ValueError("nothing to launch")
    records = limits.records()
    for name, value in sorted(env.items()):
        if not _NAME.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        records.append(f"E{name}={value}")
    if merge_stderr:
        records.append("M")
    records += [f"A{word}" for word in argv]
    if any("\0" in record for record in records):
        raise ValueError("a launch word or variable holds a NUL byte")
    return b"".join(record.encode() + b"\0" for record in records)
