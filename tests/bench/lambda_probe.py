"""Runs inside a fresh interpreter with PYTHONPATH=<bundle>: cold-imports the Lambda handler, answers one
API Gateway event, prints {"import_s", "invoke_s", "response"} as JSON. Standard library only.

    PYTHONPATH=build/lambda python3.12 tests/bench/lambda_probe.py < event.json
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import dataclass

HANDLER = "functions.api.handler.lambda_handler"


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes Powertools reads from the real context object."""

    function_name: str = "code-exec-probe"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:code-exec-probe"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/code-exec-probe"
    log_stream_name: str = "probe"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> int:
    """`--import-only`: time the cold import alone (no event on stdin)."""
    import_only = "--import-only" in sys.argv[1:]
    event = None if import_only else json.loads(sys.stdin.read())
    module_name, function_name = HANDLER.rsplit(".", 1)
    started = time.perf_counter()
    handler = getattr(importlib.import_module(module_name), function_name)
    imported = time.perf_counter()
    response = None if import_only else handler(event, FakeLambdaContext())
    invoked = time.perf_counter()
    result = {"import_s": imported - started, "invoke_s": invoked - imported, "response": response}
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
