"""The runner's documents and its guarantees that do not depend on the language (python3 as the example)."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from functions.core.protocol import CaseReport, CompileReport, RunnerReport, RunnerTask, TaskCase
from functions.core.verdicts import TIMEOUT_EXIT_CODE, Verdict
from tests.unit.conftest import (
    RUNNER,
    RUNNER_DEADLINE_S,
    SYSTEM_PYTHON,
    b64,
    make_task,
    needs_toolchain,
    run_runner_raw,
    unb64,
)

RunTask = Callable[[RunnerTask], RunnerReport]
pytestmark = needs_toolchain("python")

PRINT_ENVIRONMENT = "import os\nprint(' '.join(sorted(os.environ)))\n"
CHILD_ENV_NAMES = "HOME LANG PATH PYTHONIOENCODING TMPDIR"


def chunked_env(task: RunnerTask, chunk_chars: int) -> dict[str, str]:
    encoded = base64.b64encode(task.model_dump_json().encode()).decode("ascii")
    chunks = [encoded[start : start + chunk_chars] for start in range(0, len(encoded), chunk_chars)]
    env = {f"RUNNER_TASK_{index}": chunk for index, chunk in enumerate(chunks)}
    env["RUNNER_TASK_CHUNKS"] = str(len(chunks))
    return env


def test_report_fields_are_exactly_the_protocol() -> None:
    # Given any task / When run
    outcome = run_runner_raw(make_task("python", "print(1)\n").model_dump_json().encode())
    # Then the document has exactly the fields of RunnerReport / CaseReport, and the runner exits 0
    assert outcome.returncode == 0
    assert set(outcome.raw) == set(RunnerReport.model_fields)
    assert set(outcome.raw["cases"][0]) == set(CaseReport.model_fields)


@needs_toolchain("cpp")
def test_compile_report_fields_are_exactly_the_protocol() -> None:
    outcome = run_runner_raw(make_task("cpp", "int main() {}\n").model_dump_json().encode())
    assert set(outcome.raw["compile"]) == set(CompileReport.model_fields)


def test_task_from_env_chunks_and_the_program_sees_none_of_the_runner_env() -> None:
    # Given a task carried in three env chunks, next to a secret in the runner's own environment
    task = make_task("python", PRINT_ENVIRONMENT)
    env = chunked_env(task, chunk_chars=len(task.model_dump_json()) // 2)
    assert int(env["RUNNER_TASK_CHUNKS"]) >= 3
    env["SERVICE_SECRET"] = "do-not-leak"
    # When the runner runs with no stdin
    outcome = run_runner_raw(b"", env)
    # Then it read the task from the chunks, and the program saw only its own minimal environment
    assert outcome.report.internal_error is None
    assert unb64(outcome.report.cases[0].stdout_b64).decode().split() == CHILD_ENV_NAMES.split()


def test_the_program_sees_a_minimal_environment(run_task: RunTask) -> None:
    source = "import os\nprint(os.environ['PATH'], os.environ['HOME'] == os.getcwd(), os.environ['TMPDIR'] == os.getcwd())\n"
    report = run_task(make_task("python", source))
    assert unb64(report.cases[0].stdout_b64) == b"/usr/local/bin:/usr/bin:/bin True True\n"


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        pytest.param(b"not json", "could not read its task", id="invalid-json"),
        pytest.param(b"[1, 2]", "could not read its task", id="not-an-object"),
        pytest.param(b'{"language": {}}', "the runner failed: KeyError", id="missing-fields"),
    ],
)
def test_a_bad_task_still_gets_a_report(stdin: bytes, expected: str) -> None:
    # Given a task document the runner cannot use / When run
    outcome = run_runner_raw(stdin)
    # Then it still writes one report, with internal_error, and exits 0
    assert outcome.returncode == 0
    assert outcome.report.internal_error is not None
    assert expected in outcome.report.internal_error


def test_the_budget_clamps_cases_and_skips_the_rest(run_task: RunTask) -> None:
    # Given three endless cases, a 1 s timeout each and a 1.5 s budget for the whole request
    task = make_task(
        "python", "while True:\n    pass\n", cases=[TaskCase()] * 3, timeout_s=1.0, total_budget_s=1.5
    )
    # When run
    started = time.monotonic()
    report = run_task(task)
    # Then the first case gets its 1 s, the second what is left, the third does not run
    assert [case.verdict for case in report.cases] == [Verdict.TIME_LIMIT_EXCEEDED] * 3
    assert [case.exit_code for case in report.cases] == [TIMEOUT_EXIT_CODE] * 3
    assert report.cases[1].wall_time_s < 0.9
    assert unb64(report.cases[2].stderr_b64) == b"not run: the request's time budget was used up"
    assert time.monotonic() - started < 1.5 + 2


def test_large_stdin_the_program_never_reads_does_not_block(run_task: RunTask) -> None:
    # Given 4 MiB of stdin for a program that exits without reading it / When run
    task = make_task("python", "print('done')\n", cases=[TaskCase(stdin_b64=b64(b"y" * (4 << 20)))])
    report = run_task(task)
    # Then it is simply accepted
    assert report.cases[0].verdict is Verdict.ACCEPTED
    assert unb64(report.cases[0].stdout_b64) == b"done\n"


def test_no_process_outlives_the_run(run_task: RunTask) -> None:
    # Given a program that leaves a background child holding its stdout and exits
    source = (
        "import subprocess, sys\nchild = subprocess.Popen(['sleep', '60'])\nprint(child.pid, flush=True)\n"
    )
    # When run
    started = time.monotonic()
    report = run_task(make_task("python", source))
    # Then the runner answered at once and the straggler is gone (killed with the process group)
    assert time.monotonic() - started < 10
    assert report.cases[0].verdict is Verdict.ACCEPTED
    pid = int(unb64(report.cases[0].stdout_b64))
    assert not process_alive(pid)


def process_alive(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait for a reaper that never comes in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_stderr_is_captured_and_capped_separately(run_task: RunTask) -> None:
    source = "import sys\nsys.stderr.write('e' * 100000)\nprint('out')\n"
    report = run_task(make_task("python", source, output_limit_bytes=1000))
    case = report.cases[0]
    assert (unb64(case.stdout_b64), case.stdout_truncated) == (b"out\n", False)
    assert (unb64(case.stderr_b64), case.stderr_truncated) == (b"e" * 1000, True)


def test_writing_a_file_beyond_the_size_limit_is_output_limit_exceeded(run_task: RunTask) -> None:
    # Given a 1 MiB file size limit and a program writing 2 MiB to a file (SIGXFSZ)
    source = "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\nopen('f', 'wb').write(b'x' * (2 << 20))\n"
    report = run_task(make_task("python", source, max_file_size_bytes=1 << 20))
    # Then output_limit_exceeded
    assert report.cases[0].verdict is Verdict.OUTPUT_LIMIT_EXCEEDED
    assert report.cases[0].signal == "SIGXFSZ"


def with_language(task: RunnerTask, **changes: object) -> RunnerTask:
    return task.model_copy(update={"language": task.language.model_copy(update=changes)})


def test_a_missing_interpreter_is_an_internal_error_naming_it(run_task: RunTask) -> None:
    # Given a language whose run command does not exist on PATH
    task = with_language(make_task("python", "print(1)\n"), run=("no-such-interpreter", "{file}"))
    # When run / Then the exec failure comes back as the runner's error, naming the command
    report = run_task(task)
    assert report.cases == []
    assert report.internal_error is not None
    assert "FileNotFoundError" in report.internal_error
    assert "no-such-interpreter" in report.internal_error


def test_a_failing_version_command_leaves_the_version_empty(run_task: RunTask) -> None:
    # Given a version command that does not exist / When run
    task = with_language(make_task("python", "print(1)\n"), version_command=("no-such-tool", "--version"))
    report = run_task(task)
    # Then the program still runs; only the version is unknown
    assert report.language_version == ""
    assert report.cases[0].verdict is Verdict.ACCEPTED


def test_the_program_gets_no_descriptor_the_runner_inherited(tmp_path: Path) -> None:
    # Given a runner started with an extra open file descriptor
    task = make_task(
        "python",
        "import os, sys\ntry:\n    os.fstat(int(sys.argv[1]))\n    print('open')\nexcept OSError:\n    print('closed')\n",
    )
    with (tmp_path / "secret").open("wb") as secret:
        fd = secret.fileno()
        completed = subprocess.run(
            [str(SYSTEM_PYTHON), "-B", str(RUNNER)],
            input=task.model_copy(update={"args": (str(fd),)}).model_dump_json().encode(),
            env={},
            capture_output=True,
            pass_fds=(fd,),
            timeout=RUNNER_DEADLINE_S,
            check=True,
        )
    # When the program looks for it / Then it is closed
    report = RunnerReport.model_validate_json(completed.stdout)
    assert unb64(report.cases[0].stdout_b64) == b"closed\n"


def test_the_work_dir_is_removed_without_following_planted_symlinks(tmp_path: Path) -> None:
    # Given a file outside the work dir, and a program that links to its folder and leaves nested files
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    temp = tmp_path / "temp"
    temp.mkdir()
    source = (
        "import os\n"
        f"os.symlink({str(outside)!r}, 'link')\n"
        "os.makedirs('a/b/c')\n"
        "open('a/b/c/f', 'w').write('x')\n"
        f"os.symlink({str(outside / 'keep.txt')!r}, 'a/file-link')\n"
        "print('ok')\n"
    )
    # When the runner runs it with its temp dir there
    outcome = run_runner_raw(make_task("python", source).model_dump_json().encode(), {"TMPDIR": str(temp)})
    # Then the program ran, its work dir is gone, and what the links pointed at is untouched
    assert unb64(outcome.report.cases[0].stdout_b64) == b"ok\n"
    assert list(temp.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "precious"
