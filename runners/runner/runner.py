"""The runner program: PID 1 of a runner container. One task in (env chunks), one evidence report out (stdout).

Standard library only. The job builder starts it in each container of a run's pod with RUNNER_PHASE set:
`compile` in the init container (compile the source into /box), `run` in the main container (every case).
It protects itself before anything else (runner_guard: PID 1 signal rules, non-dumpable), so the program it
starts can neither stop, trace, read nor impersonate it. The documents are functions/core/protocol.py's
(RunnerTask, RunnerReport) and docs/runner-protocol.md's; it writes evidence, never a verdict.

Exit status: 0 when the pod may go on; 1 when it must stop (the compile step failed, or the runner could not
do its work) — a failed init container ends the pod, as Kubernetes does, and its report says why.
"""

# pathlib costs ~2 ms of start-up per request; os and os.path do the same job here.
# ruff: noqa: PTH120

from __future__ import annotations

# The runner starts once per container, so start-up imports are part of every request's latency: it uses
# os.path instead of pathlib, binascii instead of base64, and imports typing names only for mypy.
# `python3 -X importtime runner.py` shows the cost.
import os
import sys

# `python3 -I runner.py` leaves the script's folder off sys.path; the sibling modules live there.
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from runner_guard import protect  # noqa: I001 - first: nothing runs before the runner is protected

import json
import time

from runner_documents import error_report, read_task
from runner_phases import CompilePhase, RunPhase, budget_started_epoch_s

TYPE_CHECKING = False  # typing costs ~1.5 ms of start-up; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Json = dict[str, Any]

PHASE_ENV = "RUNNER_PHASE"
COMPILE, RUN = "compile", "run"
GO_ON, STOP = 0, 1


def execute(environ: Mapping[str, str]) -> tuple[Json, int]:
    """(report, exit status); never raises: anything unexpected becomes the report's internal_error."""
    phase = environ.get(PHASE_ENV)
    if phase not in (COMPILE, RUN):
        return error_report(f"{PHASE_ENV} must be {COMPILE!r} or {RUN!r}, not {phase!r}"), STOP
    try:
        task = read_task(environ)
    except (ValueError, TypeError, KeyError) as exc:
        return error_report(f"the runner could not read its task: {type(exc).__name__}: {exc}"), STOP
    try:
        if phase == COMPILE:
            if not task.get("compile"):
                return error_report("a compile phase for a language that does not compile"), STOP
            compile_report, succeeded = CompilePhase(task, time.time()).run()
            return compile_report, GO_ON if succeeded else STOP
        started_epoch_s = budget_started_epoch_s() if task.get("compile") else None
        return RunPhase(task, started_epoch_s or time.time()).run(), GO_ON
    except Exception as exc:  # noqa: BLE001 - the report is the only channel back; it must always be written
        return error_report(f"the runner failed: {type(exc).__name__}: {exc}"), STOP


def main() -> int:
    problem = protect()
    report, status = (error_report(problem), STOP) if problem else execute(os.environ)
    sys.stdout.write(json.dumps(report, separators=(",", ":")))
    sys.stdout.write("\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
