"""`make bench`: what the sandbox and the service cost on top of the bare toolchain, measured in one run.

For each language, hello world is timed four ways (median of N repetitions):
  bare      the toolchain's own compile + run commands in a temp dir (the baseline)
  runner    the runner program, unsandboxed (adds task parsing, rlimits, version probe, judging)
  sandbox   the local backend: bubblewrap + cgroups + runner
  http      the real Lambda handler with a real API Gateway event, on the local backend
Ratios against `bare` are what matter: absolute numbers move with the machine. Results go to
tests/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions import observability
from functions.api.handler import lambda_handler
from functions.core.languages import LanguageSpec, load_registry
from functions.core.models import ExecuteRequest
from functions.core.spec import build_task
from functions.local_server import LocalLambdaContext
from functions.settings import get_settings
from functions.wiring import get_service, sync_policy
from tests.bench.apigw_events import rest_proxy_event

RESULTS_PATH = Path(__file__).with_name("results.json")
# The toolchains the sandbox resolves (PATH of the sandbox): no pyenv shim, no host environment.
BARE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _median_s(action: Callable[[], object], repetitions: int) -> float:
    action()  # warm the page cache and any lazy imports; not counted
    samples = []
    for _ in range(repetitions):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _bare(language: LanguageSpec, source: bytes) -> Callable[[], object]:
    def run() -> None:
        with tempfile.TemporaryDirectory() as work_dir:
            file_name = "Hello.java" if language.name == "java" else language.file_name
            (Path(work_dir) / file_name).write_bytes(source)
            fill = {"file": file_name, "name": Path(file_name).stem, "memory_mb": "256"}
            for argv in (language.compile, language.run):
                if argv is not None:
                    subprocess.run(
                        [part.format(**fill) for part in argv],
                        cwd=work_dir,
                        check=True,
                        capture_output=True,
                        env=BARE_ENV,
                    )

    return run


def _request(language: LanguageSpec, source: bytes) -> ExecuteRequest:
    return ExecuteRequest(language=language.name, code=source.decode(), encoding="text")


def _runner(language: LanguageSpec, source: bytes) -> Callable[[], object]:
    settings = get_settings()
    task = build_task(_request(language, source), load_registry(settings.runners_dir), sync_policy(settings))
    runner = settings.runners_dir / "runner" / "runner.py"

    def run() -> None:
        subprocess.run(
            [str(settings.sandbox_python), "-B", str(runner)],
            input=task.model_dump_json().encode(),
            check=True,
            capture_output=True,
            env={},
        )

    return run


def _sandbox(language: LanguageSpec, source: bytes) -> Callable[[], object]:
    service = get_service()

    def run() -> None:
        assert service.execute(_request(language, source)).status == "success"

    return run


def _http(language: LanguageSpec, source: bytes) -> Callable[[], object]:
    body = {"language": language.name, "code": source.decode(), "encoding": "text"}

    def run() -> None:
        response = lambda_handler(
            rest_proxy_event("POST", "/execute", body=body), LocalLambdaContext(request_id="bench")
        )
        assert response["statusCode"] == 200, response

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=10)
    arguments = parser.parse_args()
    # As in the local server: nothing collects EMF here, and per-run log lines would bury the table.
    observability.set_metrics_enabled(False)
    observability.quiet_logs()
    settings = get_settings()
    results: dict[str, Any] = {"repetitions": arguments.repetitions, "languages": {}}
    for language in load_registry(settings.runners_dir).all():
        source = (settings.runners_dir / language.name / language.test_program).read_bytes()
        timings = {
            name: _median_s(factory(language, source), arguments.repetitions)
            for name, factory in (
                ("bare", _bare),
                ("runner", _runner),
                ("sandbox", _sandbox),
                ("http", _http),
            )
        }
        ratios = {name: round(value / timings["bare"], 2) for name, value in timings.items()}
        results["languages"][language.name] = {
            "median_s": {name: round(value, 4) for name, value in timings.items()},
            "ratio_to_bare": ratios,
        }
        print(
            f"{language.name:<11}",
            "  ".join(f"{n}={v * 1000:7.1f} ms (x{ratios[n]})" for n, v in timings.items()),
        )
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
