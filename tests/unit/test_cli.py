"""`python -m functions run | languages` with a fake backend: what a person at a terminal sees."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions import cli, observability
from functions.core.models import ExecuteResponse, TruncationFlags
from functions.core.protocol import b64decode
from functions.core.verdicts import Verdict
from tests.conformance import registry
from tests.conftest import FakeBackend
from tests.report_factories import process, report


@pytest.fixture(autouse=True)
def _restore_observability() -> Iterator[None]:
    """The CLI turns metrics off and logs down for the whole process; put them back for other tests."""
    metrics_enabled = observability.metrics_enabled()
    log_level = observability.logger.log_level
    yield
    observability.set_metrics_enabled(metrics_enabled)
    observability.logger.setLevel(log_level)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "hello.py"
    path.write_text("print('hi')\n")
    return path


def test_run_prints_the_programs_output_and_a_verdict_line(
    program: Path, fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a person runs a file
    exit_code = cli.main(["run", str(program)])

    # Then stdout is the program's, stderr ends with the verdict line, and the exit code is the program's
    out, err = capsys.readouterr()
    assert (exit_code, out) == (0, "hi\n")
    assert err.splitlines()[-1].startswith("-- accepted | exit 0 |")
    assert b64decode(fake_backend.tasks[0].source_b64) == b"print('hi')\n"


def test_run_exits_with_the_programs_exit_code(program: Path, fake_backend: FakeBackend) -> None:
    fake_backend.report = report(process(exit_code=3))

    assert cli.main(["run", str(program)]) == 3


def test_run_passes_stdin_args_and_limits(tmp_path: Path, program: Path, fake_backend: FakeBackend) -> None:
    stdin = tmp_path / "input.txt"
    stdin.write_text("5\n")

    cli.main(
        ["run", str(program), "--stdin", str(stdin), "--timeout", "3", "--memory-mb", "64", "--", "-v", "x"]
    )

    task = fake_backend.tasks[0]
    assert b64decode(task.cases[0].stdin_b64) == b"5\n"
    assert task.run.argv[-2:] == ("-v", "x")
    assert task.run.timeout_s == 3
    assert task.run.argv[1] == "-B"  # python: the memory limit shows in its step, not in a flag
    assert task.run.memory_mb == 64 + task.language.runtime_overhead_mb


# Every folder's source suffix, upper-cased (the match ignores case), on a file named otherwise.
EXTENSIONS = {f"prog{Path(spec.file_name).suffix.upper()}": spec.name for spec in registry().all()}


@pytest.mark.parametrize(("name", "language"), EXTENSIONS.items(), ids=EXTENSIONS.keys())
def test_the_language_comes_from_the_extension(
    tmp_path: Path, name: str, language: str, fake_backend: FakeBackend
) -> None:
    path = tmp_path / name
    path.write_text("source")

    cli.main(["run", str(path)])

    assert fake_backend.tasks[0].language.name == language


def test_an_unknown_extension_asks_for_a_language(
    tmp_path: Path, fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prog.rb"
    path.write_text("puts 1")

    exit_code = cli.main(["run", str(path)])

    assert exit_code == cli.USAGE_ERROR_EXIT
    assert "pass --language" in capsys.readouterr().err
    assert fake_backend.tasks == []


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = cli.main(["run", str(tmp_path / "absent.py")])

    assert exit_code == cli.USAGE_ERROR_EXIT
    assert "absent.py" in capsys.readouterr().err


def test_a_limit_above_its_ceiling_is_a_usage_error(
    program: Path, fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = cli.main(["run", str(program), "--timeout", "9999"])

    assert exit_code == cli.USAGE_ERROR_EXIT
    assert "above the ceiling" in capsys.readouterr().err


def test_json_prints_the_api_response(
    program: Path, fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["run", str(program), "--json"])

    body = json.loads(capsys.readouterr().out)
    assert (body["verdict"], body["stdout"]) == ("accepted", "hi\n")


def test_languages_prints_a_table(fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["languages"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["language", "aliases", "version"]
    assert {line.split()[0] for line in lines[1:]} >= {"python", "javascript", "cpp", "java"}


def test_the_verdict_line_names_signal_memory_and_truncation() -> None:
    response = ExecuteResponse(
        status="failed",
        stdout="",
        stderr="",
        execution_time=0.5,
        cpu_time=0.25,
        exit_code=139,
        signal="SIGSEGV",
        verdict=Verdict.RUNTIME_ERROR,
        memory_kb=2048,
        truncated=TruncationFlags(stdout=True),
        execution_id="e",
        language="cpp",
        language_version="12.2.0",
    )

    assert cli.verdict_line(response) == (
        "-- runtime_error | exit 139 (SIGSEGV) | 0.500 s wall | 0.250 s cpu | 2.0 MiB | cpp 12.2.0 | stdout truncated"
    )


def test_compile_warnings_are_shown_before_the_programs_stderr(
    program: Path, fake_backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_backend.report = report(process(stderr=b"note\n"))

    cli.main(["run", str(program)])

    assert capsys.readouterr().err.startswith("note\n-- accepted")
