"""The command line's exit codes (besides a program's own, which `run` passes through)."""

USAGE_ERROR_EXIT = 2
NO_EXIT_CODE_EXIT = 1
INTERRUPTED_EXIT = 130
