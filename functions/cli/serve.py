"""`serve` (the development server and its dispatcher), `languages`, `preflight`."""

from __future__ import annotations

import argparse
import signal
import sys

from pydantic import ValidationError

from functions import observability, wiring
from functions.cli.exits import USAGE_ERROR_EXIT
from functions.core.errors import ExecutionError
from functions.devserver.server import LocalApiServer
from functions.settings import Settings, get_settings
from functions.sqlite_executions.dispatcher import Dispatcher


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
