"""Orphan sweeper: delete this service's Jobs whose deadline has passed.

A Lambda that dies mid-run (timeout, crash) never reaches its `finally`; `ttlSecondsAfterFinished`
removes finished Jobs, and this removes the rest. Run it on a schedule or by hand:

    python -m functions.backends.kubernetes.sweeper [--now EPOCH_SECONDS]

It prints one JSON line: {"namespace": ..., "deleted": [...]}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from functions.backends.kubernetes.backend import create_operations
from functions.core.errors import ExecutionError
from functions.settings import get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--now", type=float, default=None, help="epoch seconds to compare deadlines with")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        operations = create_operations(settings)
        deleted = operations.sweep_orphans(time.time() if args.now is None else args.now)
    except ExecutionError as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        sys.stderr.write(f"sweep failed: {exc.message}{cause}\n")
        return 1
    sys.stdout.write(json.dumps({"namespace": operations.namespace, "deleted": deleted}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
