"""Every runners/<language>/ folder: a valid language.json, and a test program that prints exactly OK."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from functions.core.languages import load_registry
from functions.core.protocol import RunnerReport, RunnerTask
from tests.unit.conftest import RUNNERS_DIR, TOOLCHAINS, make_task, needs_toolchain, unb64

RunTask = Callable[[RunnerTask], RunnerReport]
EXPECTED_LANGUAGES = {"python", "javascript", "cpp", "java"}


def test_every_language_folder_loads_and_has_its_test_program() -> None:
    # Given the runners folder / When the registry loads it
    registry = load_registry(RUNNERS_DIR)
    # Then the four languages are there, each with its image name and an existing test program
    assert {language.name for language in registry.all()} == EXPECTED_LANGUAGES
    for language in registry.all():
        assert language.image == f"code-exec-runner-{language.name}"
        assert (RUNNERS_DIR / language.name / language.test_program).is_file()
        assert language.name in TOOLCHAINS


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("py", "python"),
        ("python3", "python"),
        ("js", "javascript"),
        ("node", "javascript"),
        ("nodejs", "javascript"),
        ("c++", "cpp"),
        ("cxx", "cpp"),
        ("java", "java"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert load_registry(RUNNERS_DIR).get(alias).name == name


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=needs_toolchain(name)) for name in sorted(EXPECTED_LANGUAGES)]
)
def test_each_test_program_prints_ok(run_task: RunTask, name: str) -> None:
    # Given the language's own test program / When the runner runs it
    language = load_registry(RUNNERS_DIR).get(name)
    source = (RUNNERS_DIR / name / language.test_program).read_text()
    report = run_task(make_task(name, source))
    # Then it exits 0 printing exactly OK, and the reported version starts with the pinned one
    assert report.internal_error is None
    assert report.cases[0].exit_code == 0
    assert unb64(report.cases[0].stdout.data_b64) == b"OK\n"
    assert report.language_version.startswith(language.version)
