"""`run FILE` (synchronously, or `--async` as an execution followed to its end) and what it prints."""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from functions import observability, wiring
from functions.cli.exits import INTERRUPTED_EXIT, NO_EXIT_CODE_EXIT, USAGE_ERROR_EXIT
from functions.cli.serve import local_dispatcher
from functions.core.errors import ExecutionError
from functions.core.executions import AsyncExecutionService, ExecutionState, ExecutionView
from functions.core.languages import LanguageRegistry, LanguageSpec
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.verdicts import Verdict
from functions.settings import get_settings

# How often `run --async` asks for its execution's state.
FOLLOW_INTERVAL_S = 0.5


def run_file(options: argparse.Namespace) -> int:
    observability.set_metrics_enabled(False)
    observability.quiet_logs()
    service = wiring.get_service()
    try:
        source = Path(options.file).read_bytes()
        stdin = _read_stdin(options.stdin)
        language = options.language or _language_for(options.file, service.registry).name
        request = ExecuteRequest(
            language=language,
            code=base64.b64encode(source).decode("ascii"),
            stdin=base64.b64encode(stdin).decode("ascii"),
            timeout=options.timeout,
            memory_limit_mb=options.memory_mb,
            args=list(options.args),
        )
        if options.run_async:
            return run_async(request, json_output=options.json)
        response = service.execute(request)
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return USAGE_ERROR_EXIT
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: {problems}", file=sys.stderr)
        return USAGE_ERROR_EXIT
    except ExecutionError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return USAGE_ERROR_EXIT
    if options.json:
        print(response.model_dump_json(indent=2))
    else:
        _print_for_a_person(response)
    return NO_EXIT_CODE_EXIT if response.exit_code is None else response.exit_code


def run_async(request: ExecuteRequest, *, json_output: bool) -> int:
    """Start an execution as POST /executions would, follow it with a progress line, print its result."""
    executions = wiring.get_executions()
    dispatcher = local_dispatcher(get_settings())
    if dispatcher is not None:
        dispatcher.start()
    started_s = time.monotonic()
    try:
        started = executions.start(request, idempotency_key=None, caller="")
        print(f"execution {started.execution_id}", file=sys.stderr, flush=True)
        try:
            view = _follow(executions, started.execution_id, started_s)
        except KeyboardInterrupt:
            view = executions.cancel(started.execution_id)
            _progress(view, time.monotonic() - started_s, final=True)
            return INTERRUPTED_EXIT
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        wiring.close_service()
    if view.state is not ExecutionState.SUCCEEDED or view.result is None:
        reason = f": {view.error.message}" if view.error else ""
        print(f"error: execution {view.execution_id} {view.state.value}{reason}", file=sys.stderr)
        return NO_EXIT_CODE_EXIT
    if json_output:
        print(view.result.model_dump_json(indent=2))
    else:
        _print_for_a_person(view.result)
    return NO_EXIT_CODE_EXIT if view.result.exit_code is None else view.result.exit_code


def _follow(executions: AsyncExecutionService, execution_id: str, started_s: float) -> ExecutionView:
    view = executions.describe(execution_id)
    while view.state is ExecutionState.RUNNING:
        _progress(view, time.monotonic() - started_s, final=False)
        time.sleep(FOLLOW_INTERVAL_S)
        view = executions.describe(execution_id)
    _progress(view, time.monotonic() - started_s, final=True)
    return view


def _progress(view: ExecutionView, elapsed_s: float, *, final: bool) -> None:
    """One line, rewritten in place on a terminal; elsewhere only the final state is written."""
    line = f"  {view.state.value} {elapsed_s:6.1f} s"
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line + ("\n" if final else ""))
    elif final:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _read_stdin(option: str | None) -> bytes:
    if option is None:
        return b""
    if option == "-":
        return sys.stdin.buffer.read()
    return Path(option).read_bytes()


def _language_for(path: Path, registry: LanguageRegistry) -> LanguageSpec:
    suffix = path.suffix.lower()
    for language in registry.all():
        if suffix and Path(language.file_name).suffix.lower() == suffix:
            return language
    raise ExecutionError(f"cannot tell the language of {path.name} from its extension; pass --language")


def _print_for_a_person(response: ExecuteResponse) -> None:
    sys.stdout.write(response.stdout)
    sys.stdout.flush()
    if response.compile_output and response.verdict is not Verdict.COMPILATION_ERROR:
        sys.stderr.write(response.compile_output)
    sys.stderr.write(response.stderr)
    if (response.stdout or response.stderr) and not (response.stdout + response.stderr).endswith("\n"):
        sys.stderr.write("\n")
    print(verdict_line(response), file=sys.stderr)


def verdict_line(response: ExecuteResponse) -> str:
    exit_text = "no exit code" if response.exit_code is None else f"exit {response.exit_code}"
    if response.signal:
        exit_text += f" ({response.signal})"
    parts = [
        response.verdict.value,
        exit_text,
        f"{response.execution_time:.3f} s wall",
        f"{response.cpu_time:.3f} s cpu",
        f"{response.memory_kb / 1024:.1f} MiB",
        f"{response.language} {response.language_version}".strip(),
    ]
    truncated = [name for name in ("stdout", "stderr") if getattr(response.truncated, name)]
    if truncated:
        parts.append(" and ".join(truncated) + " truncated")
    return "-- " + " | ".join(parts)
