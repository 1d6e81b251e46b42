"""The runner's output comparison (the one judge rule for expected output, used inside the sandbox)."""

from __future__ import annotations

import pytest
from runner_judge import outputs_match


@pytest.mark.parametrize(
    ("actual", "expected", "match"),
    [
        (b"1\n2\n", b"1\n2", True),
        (b"1  \n2\t\n\n\n", b"1\n2\n", True),
        (b"1\r\n2\r\n", b"1\n2\n", True),
        (b"1\n\n2\n", b"1\n2\n", False),
        (b" 1\n", b"1\n", False),
        (b"", b"\n\n", True),
        (b"12", b"1", False),
    ],
    ids=[
        "missing-final-newline",
        "trailing-spaces",
        "crlf",
        "inner-blank-line",
        "leading-space",
        "blank",
        "prefix",
    ],
)
def test_outputs_match_ignores_only_trailing_whitespace(actual: bytes, expected: bytes, match: bool) -> None:
    assert outputs_match(actual, expected) is match
