"""The runner program: one task document in (stdin or env chunks), one report document out (stdout).

Standard library only. It is the entrypoint of every runner image and what the local backend runs inside
bubblewrap. The documents are described in README.md beside this file and modelled by
functions/core/protocol.py (RunnerTask, RunnerReport).
"""

# pathlib costs ~2 ms of start-up per request; os and os.path do the same job here.
# ruff: noqa: PTH120

from __future__ import annotations

# The runner starts once per request, so start-up imports are part of every request's latency: it uses
# os.path instead of pathlib, binascii instead of base64, os-level temp dir handling instead of tempfile and
# shutil, and imports typing names only for mypy. `python3 -X importtime runner.py < task.json` shows the cost.
import os
import sys

# `python3 -I runner.py` leaves the script's folder off sys.path; the sibling modules live there.
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import json

from runner_documents import error_report, read_task
from runner_run import Run
from runner_workdir import make_work_dir, remove_tree

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Json = dict[str, Any]


def execute(stdin: bytes, environ: Mapping[str, str]) -> Json:
    """Never raises: anything unexpected becomes a report with internal_error."""
    try:
        task = read_task(stdin, environ)
    except (ValueError, TypeError, KeyError) as exc:
        return error_report(f"the runner could not read its task: {exc}")
    work_dir = make_work_dir(environ)
    try:
        return Run(task, work_dir).report()
    except Exception as exc:  # noqa: BLE001 - the report is the only channel back; it must always be written
        return error_report(f"the runner failed: {type(exc).__name__}: {exc}")
    finally:
        remove_tree(work_dir)


def main() -> int:
    stdin = b"" if "RUNNER_TASK_CHUNKS" in os.environ else sys.stdin.buffer.read()
    report = execute(stdin, os.environ)
    sys.stdout.write(json.dumps(report, separators=(",", ":")))
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
