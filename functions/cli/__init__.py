"""`python -m functions …`: serve the API locally, run a source file from a terminal, list languages, and
check a cluster's prerequisites for the Kubernetes backend (preflight)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from functions.backends.kubernetes.constants import CONTROLLER_GROUP
from functions.cli.exits import INTERRUPTED_EXIT, NO_EXIT_CODE_EXIT, USAGE_ERROR_EXIT
from functions.cli.run import run_file, verdict_line
from functions.cli.serve import list_languages, preflight, serve

__all__ = ["INTERRUPTED_EXIT", "NO_EXIT_CODE_EXIT", "USAGE_ERROR_EXIT", "main", "verdict_line"]


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
