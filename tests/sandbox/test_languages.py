"""Every runners/<language>/ folder: a valid language.json, the conformance programs, and its toolchain here."""

from __future__ import annotations

import json
import shutil

import pytest

from functions.core.languages import CONFORMANCE_DIR, IMAGE_PREFIX, LanguageSpec
from tests.conformance import BY_NAME, EXTRA_CASES_FILE, program_path, registry, wanted
from tests.sandbox.conftest import CHILD_PATH

LANGUAGES = [pytest.param(language, id=language.name) for language in registry().all()]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_folder_has_a_program_for_every_behaviour_it_must_honour(language: LanguageSpec) -> None:
    missing = [
        behaviour.name
        for behaviour in wanted(language)
        if not program_path(language, behaviour.name).is_file()
    ]
    assert missing == [], f"{language.name} lacks conformance programs for {missing}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_folder_holds_nothing_the_suites_would_not_read(language: LanguageSpec) -> None:
    folder = program_path(language, "hello").parent
    extra = (
        json.loads((folder / EXTRA_CASES_FILE).read_text()) if (folder / EXTRA_CASES_FILE).is_file() else []
    )
    known = {f"{name}{language.source_suffix}" for name in BY_NAME} | {EXTRA_CASES_FILE}
    known |= {entry["program"] for entry in extra}
    assert sorted(path.name for path in folder.iterdir() if path.name not in known) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_image_and_test_program_are_derived_from_the_folder(language: LanguageSpec) -> None:
    assert language.image == IMAGE_PREFIX + language.name
    assert language.test_program == f"{CONFORMANCE_DIR}/hello{language.source_suffix}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_toolchain_is_installed_here(language: LanguageSpec) -> None:
    # `make test` installs every folder's debian_packages: a missing toolchain fails here, never a skip
    path = language.env.get("PATH", CHILD_PATH)
    assert shutil.which(language.version_command[0], path=path), (
        f"{language.version_command[0]} not found: apt-get install {' '.join(language.debian_packages)}"
    )
    assert language.debian_packages


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_name_and_alias_finds_its_language(language: LanguageSpec) -> None:
    for key in (language.name, *language.aliases):
        assert registry().get(key.upper()).name == language.name
