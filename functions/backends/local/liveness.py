"""Whether a process still exists: what decides that something it left behind is stale."""

from __future__ import annotations

import os


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
