"""Evidence-only reports for tests that need one without running anything (shapes of docs/runner-protocol.md)."""

from __future__ import annotations

from functions.core.output_digest import normalized_sha256
from functions.core.protocol import ProcessReport, RunnerReport, StreamReport, b64encode


def stream(data: bytes = b"", *, total_bytes: int | None = None, tail: bytes = b"") -> StreamReport:
    """A stream that carries `data`; `total_bytes` larger than it means the stream was cut."""
    return StreamReport(
        data_b64=b64encode(data),
        total_bytes=len(data) if total_bytes is None else total_bytes,
        normalized_sha256=normalized_sha256(data),
        tail_b64=b64encode(tail),
    )


def process(
    *,
    stdout: bytes = b"",
    stderr: bytes = b"",
    exit_code: int | None = 0,
    signal: int | None = None,
    timed_out: bool = False,
    oom_killed: bool = False,
    not_run: bool = False,
    wall_time_s: float = 0.01,
    cpu_time_s: float = 0.01,
    memory_kb: int = 1024,
) -> ProcessReport:
    return ProcessReport(
        exit_code=exit_code,
        signal=signal,
        timed_out=timed_out,
        oom_killed=oom_killed,
        not_run=not_run,
        wall_time_s=wall_time_s,
        cpu_time_s=cpu_time_s,
        memory_kb=memory_kb,
        stdout=stream(stdout),
        stderr=stream(stderr),
    )


def report(
    *cases: ProcessReport, compile_step: ProcessReport | None = None, version: str = "9.9"
) -> RunnerReport:
    return RunnerReport(language_version=version, compile=compile_step, cases=list(cases))
