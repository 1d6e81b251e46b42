"""Language registry: every folder `runners/<language>/language.json` is one language.

A new language is a new folder; nothing in the code names a language.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.core.errors import UnknownLanguageError

LANGUAGE_FILE_NAME = "language.json"
# Each folder's programs with a known outcome, one file per behaviour: `<behaviour><the source suffix>`.
CONFORMANCE_DIR = "conformance"
IMAGE_PREFIX = "code-exec-runner-"
# What every folder's hello world (its test program) prints.
TEST_PROGRAM_OUTPUT = "Hello, World!\n"


class LanguageSpec(BaseModel):
    """What the runner needs to compile and run one language (placeholders: {file} {name} {memory_mb})."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    display_name: str
    aliases: tuple[str, ...] = ()
    # The Judge0 CE language ids this language answers under /judge0 (unique across the registry): the
    # ids of the same language in Judge0 CE's own list, whatever version Judge0 names.
    judge0_ids: tuple[Annotated[int, Field(ge=1)], ...] = ()
    file_name: str
    source_name_pattern: str | None = None
    compile: tuple[str, ...] | None = None
    run: tuple[str, ...]
    version_command: tuple[str, ...]
    version_pattern: str
    version: str
    memory_error_patterns: tuple[str, ...] = ()
    limit_address_space: bool = True
    env: dict[str, str] = Field(default_factory=dict)
    compile_memory_mb: int = Field(default=0, ge=0)
    runtime_overhead_mb: int = Field(default=0, ge=0)
    # Host paths the local sandbox must show (read-only) beyond /usr: configuration in /etc, or a toolchain
    # installed under the otherwise hidden /usr/local.
    sandbox_paths: tuple[str, ...] = ()
    # Debian packages that provide the toolchain (`make` installs them when it is missing; images use them).
    debian_packages: tuple[str, ...] = ()

    @property
    def compiled(self) -> bool:
        return self.compile is not None

    @property
    def image(self) -> str:
        """The runner image's repository name."""
        return IMAGE_PREFIX + self.name

    @property
    def source_suffix(self) -> str:
        return PurePosixPath(self.file_name).suffix

    @property
    def test_program(self) -> str:
        """The folder's hello world, relative to the folder (the preflight and the bench run it)."""
        return f"{CONFORMANCE_DIR}/hello{self.source_suffix}"

    def test_program_path(self, runners_dir: Path) -> Path:
        """The folder's hello world on disk (its folder is named after the language)."""
        return runners_dir / self.name / self.test_program


class LanguageRegistry:
    """Looks languages up by name or alias, case-insensitively."""

    def __init__(self, languages: list[LanguageSpec]) -> None:
        self._languages = {language.name: language for language in languages}
        self._by_alias: dict[str, LanguageSpec] = {}
        self._by_judge0_id: dict[int, LanguageSpec] = {}
        for language in languages:
            for key in (language.name, *language.aliases):
                if key.lower() in self._by_alias:
                    raise ValueError(f"language name or alias {key!r} is defined twice")
                self._by_alias[key.lower()] = language
            for judge0_id in language.judge0_ids:
                if judge0_id in self._by_judge0_id:
                    raise ValueError(f"Judge0 language id {judge0_id} is defined twice")
                self._by_judge0_id[judge0_id] = language

    def get(self, name_or_alias: str) -> LanguageSpec:
        language = self._by_alias.get(name_or_alias.strip().lower())
        if language is None:
            known = ", ".join(sorted(self._languages))
            raise UnknownLanguageError(f"unknown language {name_or_alias!r}; supported: {known}")
        return language

    def all(self) -> list[LanguageSpec]:
        return [self._languages[name] for name in sorted(self._languages)]

    def by_judge0_id(self, judge0_id: int) -> LanguageSpec | None:
        return self._by_judge0_id.get(judge0_id)

    def judge0_ids(self) -> list[tuple[int, LanguageSpec]]:
        """Every Judge0 id with its language, by id."""
        return sorted(self._by_judge0_id.items(), key=lambda item: item[0])


def load_language(path: Path) -> LanguageSpec:
    try:
        return LanguageSpec.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError) as exc:
        raise ValueError(f"invalid language definition {path}: {exc}") from exc


@cache
def load_registry(runners_dir: Path) -> LanguageRegistry:
    paths = sorted(runners_dir.glob(f"*/{LANGUAGE_FILE_NAME}"))
    if not paths:
        raise ValueError(f"no {LANGUAGE_FILE_NAME} found under {runners_dir}")
    return LanguageRegistry([load_language(path) for path in paths])
