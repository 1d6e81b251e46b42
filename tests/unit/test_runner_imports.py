"""The pod's runner stays independent: standard library and its own sibling modules only.

It runs in every runner image, where nothing of the service is installed; import-linter only sees the
`functions` package, so this test holds the line for runners/runner.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

RUNNER_DIR = Path(__file__).resolve().parents[2] / "runners" / "runner"
SIBLINGS = {path.stem for path in RUNNER_DIR.glob("*.py")}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(RUNNER_DIR.glob("*.py")), ids=lambda path: path.name)
def test_the_runner_imports_only_the_standard_library_and_itself(path: Path) -> None:
    foreign = _imported_roots(path) - SIBLINGS - set(sys.stdlib_module_names) - {"__future__"}
    assert foreign == set(), f"{path.name} imports {sorted(foreign)}"
