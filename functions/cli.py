"""`python -m functions …`: serve the API locally, run a source file from a terminal, list languages, and
check a cluster's prerequisites for the Kubernetes backend (preflight)."""

from __future__ import annotations

import argparse
import base64
import signal
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from functions import observability, wiring
from functions.backends.kubernetes.constants import CONTROLLER_GROUP
from functions.core.errors import ExecutionError
from functions.core.executions import AsyncExecutionService, ExecutionState, ExecutionView
from functions.core.languages import LanguageRegistry, LanguageSpec
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.verdicts import Verdict
from functions.local_async.dispatcher import Dispatcher
from functions.local_server import LocalApiServer
from functions.settings import Settings, get_settings

USAGE_ERROR_EXIT = 2
NO_EXIT_CODE_EXIT = 1
INTERRUPTED_EXIT = 130
# How often `run --async` asks for its execution's state.
FOLLOW_INTERVAL_S = 0.5


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    # Everything after "--" belongs to the program: argparse cannot take it once options followed FILE.
    program_args: list[str] = []
    if "--" in arguments:
        split = arguments.index("--")
        arguments, program_args = arguments[:split], arguments[split + 1 :]
    parser = _parser()
    options = parser.parse_args(arguments)
    command: str = options.command
    if program_args and command != "run":
        parser.error("only 'run' takes program arguments after '--'")
    options.args = [*getattr(options, "args", []), *program_args]
    if command == "serve":
        return serve(options.host, options.port, access_log=not options.quiet)
    if command == "languages":
        return list_languages()
    if command == "preflight":
        return preflight(options)
    return run_file(options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m functions", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="serve the HTTP API (the Lambda handler) locally")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument("--quiet", action="store_true", help="no access log lines")

    run_cmd = commands.add_parser(
        "run",
        help="run a source file in the sandbox and print its output and verdict",
        description="Program arguments that start with '-' go after '--'.",
    )
    run_cmd.add_argument("file", type=Path)
    run_cmd.add_argument("args", nargs="*", help="command-line arguments of the program")
    run_cmd.add_argument("--language", "-l", help="language or alias (default: from the file extension)")
    run_cmd.add_argument("--stdin", help="file to feed as standard input ('-' = this terminal's stdin)")
    run_cmd.add_argument("--timeout", type=float, help="wall-clock limit in seconds")
    run_cmd.add_argument("--memory-mb", type=int, help="memory limit in MiB")
    run_cmd.add_argument("--json", action="store_true", help="print the raw /execute response")
    run_cmd.add_argument(
        "--async",
        dest="run_async",
        action="store_true",
        help="run it as an asynchronous execution (like POST /executions: timeout up to "
        "EXEC_MAX_ASYNC_TIMEOUT_S) and follow it; Ctrl-C cancels it",
    )

    commands.add_parser("languages", help="list the supported languages and toolchain versions")
    _add_preflight_parser(commands)
    return parser


def _add_preflight_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    preflight_cmd = commands.add_parser(
        "preflight",
        help="check the cluster gives runner pods the isolation they need (EXEC_* settings; exit 1 on a failure)",
        description="Reads the runner namespace as you (a cluster admin: EXEC_KUBECONFIG / EXEC_EKS_CLUSTER_NAME) "
        "and acts as the service by impersonating its Kubernetes group.",
    )
    preflight_cmd.add_argument(
        "--egress-target",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="also prove a runner pod cannot reach this address (e.g. 169.254.169.254:80, instance metadata)",
    )
    preflight_cmd.add_argument(
        "--no-runs",
        action="store_true",
        help="check the configuration only, create no Job (before the first deploy: no runner image yet)",
    )
    preflight_cmd.add_argument(
        "--run-timeout",
        type=float,
        default=90.0,
        help="seconds each canary Job may take, image pull included",
    )
    preflight_cmd.add_argument(
        "--stack",
        help="check for the service as this deployed stack configured it (its Lambda's EXEC_* variables; "
        "EXEC_* variables set here take precedence)",
    )
    preflight_cmd.add_argument("--as-user", default="code-exec-preflight", help="user name to impersonate")
    preflight_cmd.add_argument(
        "--as-group", default=CONTROLLER_GROUP, help="the service's Kubernetes group (EKS access entry)"
    )


def serve(host: str, port: int, *, access_log: bool) -> int:
    observability.set_metrics_enabled(False)
    service = wiring.get_service()  # fail now, not on the first request, if the backend cannot start
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if access_log else None
    settings = get_settings()
    try:
        server = LocalApiServer.for_settings((host, port), settings, access_log=log)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    # `kill`, a container runtime or a process manager stops the server the way Ctrl-C does: workers included.
    signal.signal(signal.SIGTERM, _interrupt)
    # The asynchronous executions run here, in the server process: the workers only record them.
    dispatcher = local_dispatcher(settings)
    try:
        if dispatcher is not None:
            dispatcher.start()
        server.warm()
        workers = settings.local_max_concurrency
        print(f"code-exec on {server.url} (backend: {service.backend.name}, {workers} workers)", flush=True)
        print(f"  POST {server.url}/execute   Swagger UI: {server.url}/swagger   Ctrl-C stops", flush=True)
        print(f"  POST {server.url}/executions   (asynchronous, kept under {settings.data_dir})", flush=True)
        server.serve_forever()
    except ExecutionError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
        if dispatcher is not None:
            dispatcher.stop()  # its executions stay RUNNING: the next start resumes them
        wiring.close_service()  # this process's own sandboxes (the dispatcher's runs, /languages' probes)
    return 0


def local_dispatcher(settings: Settings) -> Dispatcher | None:
    """What runs local executions; None when they are a state machine's (EXEC_STATE_MACHINE_ARN)."""
    if settings.state_machine_arn:
        return None
    return wiring.build_dispatcher(settings, wiring.get_workflow())


def _interrupt(signal_number: int, frame: object) -> None:  # noqa: ARG001 - the signal handler signature
    raise KeyboardInterrupt


def list_languages() -> int:
    rows = [("language", "aliases", "version", "compiled", "file")]
    rows += [
        (info.name, ", ".join(info.aliases), info.version, "yes" if info.compiled else "no", info.file_name)
        for info in wiring.get_service().languages()
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def preflight(options: argparse.Namespace) -> int:
    # Imported here: the other commands never need the Kubernetes client.
    from functions.aws.deployed_settings import (  # noqa: PLC0415
        DeployedStackError,
        deployed_environment,
        settings_with,
    )
    from functions.backends.kubernetes.preflight.cli import Options, main  # noqa: PLC0415

    observability.quiet_logs()
    try:
        settings = settings_with(deployed_environment(options.stack)) if options.stack else get_settings()
    except (DeployedStackError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR_EXIT
    return main(Options.from_arguments(options), settings)


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
