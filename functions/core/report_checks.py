"""Reports are untrusted input: bound their size, check their shape, re-apply every cap.

A report is written by a supervisor that ran next to the program (the pod's runner) or by the local backend;
either way it is checked the same before anything is judged. A report that fails a check is never judged: the
run's answer is `internal_error` with the reason (and the caller logs it).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from functions.core.output_digest import TAIL_BYTES
from functions.core.protocol import (
    ProcessReport,
    RunnerReport,
    StreamReport,
    b64decode,
    b64encode,
)

# Fixed part of a report and of each case (field names, numbers, digests) on top of its streams' bytes.
REPORT_OVERHEAD_BYTES = 4096
CASE_OVERHEAD_BYTES = 1024


class ReportRejectedError(ValueError):
    """The report cannot be judged; the message says why (it becomes the run's internal_error)."""


class ReportExpectations(BaseModel):
    """What a report for one task must look like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_count: int
    compiled: bool
    output_limit_bytes: int


def max_report_bytes(expectations: ReportExpectations) -> int:
    """The largest honest report: every stream full and base64-encoded, plus the fixed parts."""
    stream_bytes = 4 * (expectations.output_limit_bytes + TAIL_BYTES) // 3 + 8
    per_process = 2 * stream_bytes + CASE_OVERHEAD_BYTES
    return REPORT_OVERHEAD_BYTES + per_process * (expectations.case_count + 1)


def parse_report(raw: bytes, expectations: ReportExpectations) -> RunnerReport:
    """The report in `raw` (a JSON document), bounded and schema-checked; raises ReportRejectedError."""
    limit = max_report_bytes(expectations)
    if len(raw) > limit:
        raise ReportRejectedError(f"the report is {len(raw)} bytes, more than the {limit} a task can produce")
    try:
        report = RunnerReport.model_validate_json(raw)
    except ValidationError as exc:
        raise ReportRejectedError(f"the report is malformed: {_first_error(exc)}") from exc
    return check_report(report, expectations)


def check_report(report: RunnerReport, expectations: ReportExpectations) -> RunnerReport:
    """The report with every stream re-capped; raises ReportRejectedError when its shape is wrong."""
    if report.internal_error is not None:
        return report
    if expectations.compiled != (report.compile is not None):
        expected = "a compile step" if expectations.compiled else "no compile step"
        raise ReportRejectedError(f"the report does not match the task: expected {expected}")
    compile_failed = report.compile is not None and not compile_succeeded(report.compile)
    wanted = 0 if compile_failed else expectations.case_count
    if len(report.cases) != wanted:
        raise ReportRejectedError(f"the report has {len(report.cases)} test case(s) where {wanted} ran")
    compile_step = None if report.compile is None else _checked(report.compile, expectations)
    return report.model_copy(
        update={
            "compile": compile_step,
            "cases": [_checked(case, expectations) for case in report.cases],
        }
    )


def compile_succeeded(step: ProcessReport) -> bool:
    return step.exit_code == 0 and step.signal is None and not (step.timed_out or step.not_run)


def _checked(process: ProcessReport, expectations: ReportExpectations) -> ProcessReport:
    if process.exit_code is not None and process.signal is not None:
        raise ReportRejectedError("a process cannot both exit with a code and die of a signal")
    return process.model_copy(
        update={
            "stdout": _capped(process.stdout, expectations.output_limit_bytes),
            "stderr": _capped(process.stderr, expectations.output_limit_bytes),
        }
    )


def _capped(stream: StreamReport, limit_bytes: int) -> StreamReport:
    """Keep at most `limit_bytes`; the total can only say more than was kept, never less."""
    data = b64decode(stream.data_b64)
    if stream.total_bytes < len(data):
        raise ReportRejectedError("a stream reports fewer bytes in total than it carries")
    tail = b64decode(stream.tail_b64)[-TAIL_BYTES:]
    if len(data) <= limit_bytes and len(tail) == len(b64decode(stream.tail_b64)):
        return stream
    return stream.model_copy(update={"data_b64": b64encode(data[:limit_bytes]), "tail_b64": b64encode(tail)})


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    return f"{location}: {error['msg']}" if location else str(error["msg"])
