"""`python -m functions serve | run FILE | languages` (see functions/cli.py)."""

from __future__ import annotations

import sys

from pydantic import ValidationError


def _main() -> int:
    try:
        # Imported here: importing the CLI reads and validates the EXEC_* settings.
        from functions.cli import main  # noqa: PLC0415
    except ValidationError as exc:
        sys.stderr.write(f"error: invalid EXEC_* settings:\n{exc}\n")
        return 2
    return main()


if __name__ == "__main__":
    sys.exit(_main())
