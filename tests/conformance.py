"""The execution contract every language and every backend honours: behaviours, and the folders' programs.

A language folder holds one program per behaviour, `runners/<language>/conformance/<behaviour><suffix>`;
this module says what each behaviour's request is and what its answer must hold, once for all languages.
The HTTP contract suite (local sandbox) and the Kubernetes suite (a Job per run on the real control plane)
both parametrize from `conformance_cases()`, so a new language folder is tested by both with no code change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.core.languages import (
    CONFORMANCE_DIR,
    TEST_PROGRAM_OUTPUT,
    LanguageRegistry,
    LanguageSpec,
    load_registry,
)
from functions.settings import DEFAULT_RUNNERS_DIR

STDIN_TEXT = "line one\nzwei ünïcödé\n3\n"
ARGS = ["a b", "-x", "ç"]
TLE_TIMEOUT_S = 2.0
MLE_LIMIT_MB = 64
# Three cases, the second with a wrong expected output (the third's trailing blank lines are tolerated).
DOUBLE_CASES = [
    {"stdin": "1\n", "expected_output": "2"},
    {"stdin": "2\n", "expected_output": "5"},
    {"stdin": "3\n", "expected_output": "6\n\n"},
]
FAILED = {"status": "failed"}
OUTPUT_CAP_BYTES = 64 * 1024
EXTRA_CASES_FILE = "extra.json"  # a folder's own cases: [{"name", "program", "fields"?, "equal"}]


@dataclass(frozen=True)
class Behaviour:
    """One program's request and what its response must hold, whatever the language."""

    name: str  # the program's file stem
    fields: Mapping[str, Any]  # the request's other fields
    equal: Mapping[str, Any]  # response field -> its exact value
    not_equal: Mapping[str, Any] = field(default_factory=dict)  # response field -> a value it must not have
    non_blank: tuple[str, ...] = ()  # text fields that must say something
    case_results: tuple[tuple[str, str], ...] | None = None  # (verdict, stdout) of each test case
    compiled_only: bool = False  # only compiled languages have (and need) this program
    truncated_stdout: bool = False  # more than the output cap was printed: kept up to the cap, and flagged


BEHAVIOURS = (
    Behaviour(
        "hello",
        {},
        {"status": "success", "verdict": "accepted", "stdout": TEST_PROGRAM_OUTPUT, "exit_code": 0},
        non_blank=("language_version",),
    ),
    Behaviour("echo_stdin", {"stdin": STDIN_TEXT}, {"verdict": "accepted", "stdout": STDIN_TEXT}),
    Behaviour("print_args", {"args": ARGS}, {"verdict": "accepted", "stdout": "a b -x ç\n"}),
    Behaviour("exit_3", {}, FAILED | {"verdict": "runtime_error", "exit_code": 3}),
    Behaviour("runtime_error", {}, FAILED | {"verdict": "runtime_error"}, not_equal={"exit_code": 0}),
    Behaviour(
        "compile_error",
        {},
        FAILED | {"verdict": "compilation_error"},
        not_equal={"exit_code": 0},
        non_blank=("compile_output",),
        compiled_only=True,
    ),
    Behaviour(
        "infinite_loop",
        {"timeout": TLE_TIMEOUT_S},
        FAILED | {"verdict": "time_limit_exceeded", "exit_code": 124},
        non_blank=("stderr",),  # the note that the time limit was hit
    ),
    Behaviour(
        "allocate_512mb", {"memory_limit_mb": MLE_LIMIT_MB}, FAILED | {"verdict": "memory_limit_exceeded"}
    ),
    # Each case has its own verdict, and the top level reports the first failure.
    Behaviour(
        "double",
        {"test_cases": DOUBLE_CASES},
        FAILED | {"verdict": "wrong_answer"},
        case_results=(("accepted", "2\n"), ("wrong_answer", "4\n"), ("accepted", "6\n")),
    ),
    Behaviour("threads", {"memory_limit_mb": 256}, {"verdict": "accepted", "stdout": "42\n"}),
    # A program is never killed for printing: 10 MB of "x" are cut at the cap, flagged, and judged.
    Behaviour("print_10mb", {"timeout": 10}, {"verdict": "accepted", "exit_code": 0}, truncated_stdout=True),
)
BY_NAME = {behaviour.name: behaviour for behaviour in BEHAVIOURS}


def registry(runners_dir: Path = DEFAULT_RUNNERS_DIR) -> LanguageRegistry:
    return load_registry(runners_dir)


def program_path(language: LanguageSpec, behaviour: str, runners_dir: Path = DEFAULT_RUNNERS_DIR) -> Path:
    return runners_dir / language.name / CONFORMANCE_DIR / f"{behaviour}{language.source_suffix}"


def program(language: LanguageSpec, behaviour: str, runners_dir: Path = DEFAULT_RUNNERS_DIR) -> str:
    return program_path(language, behaviour, runners_dir).read_text(encoding="utf-8")


def wanted(language: LanguageSpec) -> list[Behaviour]:
    """The behaviours a language folder must have a program for."""
    return [behaviour for behaviour in BEHAVIOURS if language.compiled or not behaviour.compiled_only]


@dataclass(frozen=True)
class ContractCase:
    """One language's program for one behaviour: the request, and the checks of its answer."""

    behaviour: Behaviour
    language: LanguageSpec
    code: str

    @property
    def id(self) -> str:
        return f"{self.behaviour.name}-{self.language.name}"

    def request(self) -> dict[str, Any]:
        return {
            "language": self.language.name,
            "code": self.code,
            "encoding": "text",
            **self.behaviour.fields,
        }

    def check(self, body: Mapping[str, Any]) -> None:
        """Assert the response body honours the contract (the stderr tail explains a wrong verdict)."""
        expected = dict(self.behaviour.equal)
        if self.behaviour.name == "hello":
            expected["language"] = self.language.name
        assert {key: body[key] for key in expected} == expected, str(body.get("stderr"))[-500:]
        for key, value in self.behaviour.not_equal.items():
            assert body[key] != value, (key, body[key])
        for key in self.behaviour.non_blank:
            assert str(body[key]).strip(), f"{key} is blank"
        if self.behaviour.truncated_stdout:
            assert body["truncated"]["stdout"] is True
            assert 0 < len(body["stdout"].encode()) <= OUTPUT_CAP_BYTES
            assert set(body["stdout"]) == {"x"}
        if self.behaviour.case_results is not None:
            results = body["test_results"]
            assert [(result["verdict"], result["stdout"]) for result in results] == list(
                self.behaviour.case_results
            )
            if self.language.compiled:  # every case ran the very same binary
                identities = {result["stderr"] for result in results}
                assert len(identities) == 1, identities
                assert identities != {""}


def extra_cases(language: LanguageSpec, runners_dir: Path = DEFAULT_RUNNERS_DIR) -> list[ContractCase]:
    """The cases a folder adds for what only its language has (a class name, a signal)."""
    path = runners_dir / language.name / CONFORMANCE_DIR / EXTRA_CASES_FILE
    if not path.is_file():
        return []
    cases = []
    for entry in json.loads(path.read_text(encoding="utf-8")):
        behaviour = Behaviour(entry["name"], entry.get("fields", {}), entry["equal"])
        code = (path.parent / entry["program"]).read_text(encoding="utf-8")
        cases.append(ContractCase(behaviour, language, code))
    return cases


def conformance_cases(runners_dir: Path = DEFAULT_RUNNERS_DIR) -> list[ContractCase]:
    """Every program every language folder has, by behaviour then language, then the folders' own cases."""
    languages = registry(runners_dir).all()
    shared = [
        ContractCase(behaviour, language, program(language, behaviour.name, runners_dir))
        for behaviour in BEHAVIOURS
        for language in languages
        if program_path(language, behaviour.name, runners_dir).is_file()
    ]
    return shared + [case for language in languages for case in extra_cases(language, runners_dir)]
