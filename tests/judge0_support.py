"""What the official Judge0 SDK is asked to do against /judge0, shared by the local suite
(tests/integration/test_judge0_sdk.py) and the Kubernetes one (tests/cluster/test_kubernetes_judge0.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import judge0
from judge0 import Client, Submission
from judge0.base_types import Config, Status
from judge0.retry import MaxWaitTime

from functions.core.languages import TEST_PROGRAM_OUTPUT, LanguageSpec, load_registry

# The SDK polls every 0.1 s; a submission that never finishes fails its test instead of hanging the suite.
MAX_WAIT_S = 180
C, CPP, PYTHON = 50, 54, 71  # Judge0 CE 1.13.1 ids


def sdk_client(endpoint: str) -> Client:
    """The SDK's own client, as a Judge0 user builds it: only the URL changes."""
    return Client(endpoint=endpoint, retry_strategy=MaxWaitTime(MAX_WAIT_S))


def hello_world(runners_dir: Path, judge0_id: int) -> Submission:
    """The language folder's own hello world, judged against what it must print."""
    language = load_registry(runners_dir).by_judge0_id(judge0_id)
    assert language is not None
    return Submission(
        source_code=language.test_program_path(runners_dir).read_text(encoding="utf-8"),
        language=judge0_id,
        expected_output=TEST_PROGRAM_OUTPUT,
    )


def one_id_per_language(runners_dir: Path) -> dict[str, int]:
    languages: list[LanguageSpec] = load_registry(runners_dir).all()
    return {language.name: language.judge0_ids[0] for language in languages if language.judge0_ids}


def run_all(client: Client, submissions: list[Submission]) -> list[Submission]:
    """judge0.run on several submissions: batches of config_info's size, then polls them to the end."""
    results = judge0.run(client=client, submissions=submissions)
    assert isinstance(results, list)
    return results


def check_sdk_reads(client: Client, expected_ids: list[int]) -> None:
    """What the SDK reads on its own: languages and config (when built), /about (its id map), statuses."""
    assert isinstance(client.config, Config)
    assert client.version == "1.13.1"
    assert [language.id for language in client.languages] == expected_ids
    assert client.is_language_supported(judge0.LanguageAlias.PYTHON)  # 71 in the 1.13.1 map
    assert [status["id"] for status in client.get_statuses()] == [int(status) for status in Status]
    assert isinstance(client.get_config_info(), Config)
    assert client.get_language(PYTHON).source_file == "main.py"


@dataclass(frozen=True)
class Behaviour:
    """A program, how it is submitted, and what Judge0 reports for it."""

    name: str
    language_id: int
    source_code: str
    status: Status
    options: dict[str, Any] = field(default_factory=dict)  # more Submission fields
    expected: dict[str, Any] = field(default_factory=dict)  # Submission attributes after the run
    compile_output_has: str | None = None
    message: str | None = None  # decoded: the SDK leaves `message` in base64, as Judge0 sends it

    def submission(self) -> Submission:
        return Submission(source_code=self.source_code, language=self.language_id, **self.options)

    def check(self, result: Submission) -> None:
        found: dict[str, Any] = {
            "status": result.status,
            **{name: getattr(result, name) for name in self.expected},
        }
        assert found == {"status": self.status, **self.expected}, (
            self.name,
            found,
            result.stderr,
            result.compile_output,
        )
        if self.compile_output_has is not None:
            assert self.compile_output_has in (result.compile_output or ""), result.compile_output
        if self.message is not None:
            assert result.message is not None
            assert base64.b64decode(result.message).decode() == self.message


BEHAVIOURS = (
    Behaviour("stdin", PYTHON, "print(input()[::-1])", Status.ACCEPTED, {"stdin": "olleh"}, {"stdout": "hello\n"}),
    Behaviour("accepted", PYTHON, "print(2 + 2)", Status.ACCEPTED, {"expected_output": "4"}, {"stdout": "4\n"}),
    Behaviour("wrong-answer", PYTHON, "print(2 + 2)", Status.WRONG_ANSWER, {"expected_output": "5"}, {"stdout": "4\n"}),
    Behaviour("compile-error", CPP, "int main( {\n", Status.COMPILATION_ERROR, expected={"stdout": None, "time": None}, compile_output_has="error"),
    Behaviour("time-limit", PYTHON, "while True:\n    pass\n", Status.TIME_LIMIT_EXCEEDED, {"cpu_time_limit": 1}, message="Time limit exceeded"),
    Behaviour("segfault", C, "int main(void) { volatile int *p = 0; return *p; }\n", Status.RUNTIME_ERROR_SIGSEGV, expected={"exit_signal": 11}),
    Behaviour("division-by-zero", C, "int main(void) { volatile int zero = 0, seven = 7; return seven / zero; }\n", Status.RUNTIME_ERROR_SIGFPE, expected={"exit_signal": 8}),
    Behaviour("abort", C, "#include <stdlib.h>\nint main(void) { abort(); }\n", Status.RUNTIME_ERROR_SIGABRT, expected={"exit_signal": 6}),
    Behaviour("non-zero-exit", PYTHON, "raise SystemExit(3)", Status.RUNTIME_ERROR_NZEC, expected={"exit_code": 3, "exit_signal": None}, message="Exited with error status 3"),
    Behaviour("memory", PYTHON, "x = bytearray(200 * 1024 * 1024)", Status.RUNTIME_ERROR_OTHER, {"memory_limit": 32768}, message="Memory limit exceeded"),
    Behaviour("arguments", PYTHON, "import sys\nprint(sys.argv[1:])", Status.ACCEPTED, {"command_line_arguments": "a 'b c'"}, {"stdout": "['a', 'b c']\n"}),
    Behaviour(
        "stderr-to-stdout", PYTHON, "import sys\nprint(1, flush=True)\nprint(2, file=sys.stderr, flush=True)\n",
        Status.ACCEPTED, {"redirect_stderr_to_stdout": True}, {"stdout": "1\n2\n", "stderr": None},
    ),
)  # fmt: skip
