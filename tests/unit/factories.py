"""Small builders shared by the pure core tests: a limit policy, a two-language registry, requests, responses."""

from __future__ import annotations

import base64
from typing import Any

from functions.core import models
from functions.core.languages import LanguageRegistry, LanguageSpec
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.spec import LimitPolicy
from functions.core.verdicts import Verdict

POLICY = LimitPolicy(
    default_timeout_s=10,
    max_timeout_s=20,
    compile_timeout_s=30,
    total_budget_s=28,
    default_memory_limit_mb=256,
    min_memory_limit_mb=16,
    max_memory_limit_mb=512,
    max_code_bytes=100,
    max_stdin_bytes=50,
    output_limit_bytes=1024,
    max_test_cases=3,
    max_args=2,
    max_arg_bytes=8,
    max_processes=32,
    max_file_size_bytes=1024,
)


def _language(name: str, aliases: tuple[str, ...], judge0_ids: tuple[int, ...] = ()) -> LanguageSpec:
    return LanguageSpec(
        name=name,
        display_name=name.title(),
        aliases=aliases,
        judge0_ids=judge0_ids,
        file_name="main.x",
        run=("run", "{file}"),
        version_command=("run", "--version"),
        version_pattern=r"(\S+)",
        version="1",
    )


REGISTRY = LanguageRegistry([_language("python", ("py",), (71, 92)), _language("cpp", ("c++",), (54,))])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def request(**overrides: Any) -> ExecuteRequest:
    body: dict[str, Any] = {"language": "python", "code": b64("print(1)")}
    body.update(overrides)
    return ExecuteRequest.model_validate(body)


def response(
    stdout: str = "", stderr: str = "", cases: list[tuple[str, str]] | None = None
) -> ExecuteResponse:
    results = None
    if cases is not None:
        results = [
            models.TestCaseResult(
                verdict=Verdict.ACCEPTED,
                stdout=out,
                stderr=err,
                exit_code=0,
                execution_time=0.1,
                cpu_time=0.1,
                memory_kb=1,
            )
            for out, err in cases
        ]
    return ExecuteResponse(
        status="success",
        stdout=stdout,
        stderr=stderr,
        execution_time=0.1,
        exit_code=0,
        verdict=Verdict.ACCEPTED,
        execution_id="e",
        language="python",
        test_results=results,
    )
