"""The runner's documents and the guarantees that do not depend on the language (python3 as the example)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import runner_documents
import runner_phases
import runner_workdir
from runner import PHASE_ENV as RUNNER_PHASE_ENV

from functions.backends.kubernetes import constants
from functions.core.protocol import (
    PROGRAM_DIR,
    ProcessReport,
    RunnerReport,
    RunnerTask,
    StreamReport,
    TaskCase,
)
from functions.core.verdicts import Verdict
from tests.sandbox.conftest import RunPod, b64, judged, make_task, unb64

RunTask = Callable[[RunnerTask], RunnerReport]

PRINT_ENVIRONMENT = "import os\nprint(' '.join(sorted(os.environ)), os.getcwd(), os.environ['HOME'])\n"


def stdout_of(report: RunnerReport, index: int = 0) -> bytes:
    return unb64(report.cases[index].stdout.data_b64)


def test_the_runner_names_what_the_job_builder_names() -> None:
    # The runner is standard-library only and cannot import the service: the shared names are kept equal here
    assert RUNNER_PHASE_ENV == constants.PHASE_ENV
    assert (runner_documents.CHUNKS_ENV, runner_documents.CHUNK_ENV_PREFIX) == (
        constants.TASK_CHUNKS_ENV,
        constants.TASK_CHUNK_ENV_PREFIX,
    )
    assert runner_workdir.PROGRAM_DIR == PROGRAM_DIR == constants.BOX_MOUNT_PATH
    assert runner_workdir.SCRATCH_DIR == constants.TMP_MOUNT_PATH
    assert runner_phases.STATE_DIR == constants.STATE_MOUNT_PATH


def test_report_fields_are_exactly_the_protocol(run_pod: RunPod) -> None:
    # Given any task / When run
    (container,) = run_pod(make_task("python", "print(1)\n")).containers
    # Then the document has exactly the fields of the protocol's models, and the runner exits 0
    assert container.outcome.exit_code == 0
    assert container.raw is not None
    # (compile_cached is the local backend's: a pod never reuses a compile)
    assert set(container.raw) == set(RunnerReport.model_fields) - {"compile_cached"}
    assert set(container.raw["cases"][0]) == set(ProcessReport.model_fields)
    assert set(container.raw["cases"][0]["stdout"]) == set(StreamReport.model_fields)


def test_the_compile_container_reports_the_compile_step_only(run_pod: RunPod) -> None:
    compile_container, runner_container = run_pod(make_task("cpp", "int main() {}\n")).containers
    assert compile_container.raw is not None
    assert set(compile_container.raw["compile"]) == set(ProcessReport.model_fields)
    assert compile_container.raw["cases"] == []
    assert runner_container.raw is not None
    assert runner_container.raw["compile"] is None


def test_a_merged_run_step_writes_stderr_into_stdout(run_pod: RunPod) -> None:
    # Given a run step whose stderr goes into its stdout
    code = "import sys\nprint(1, flush=True)\nprint(2, file=sys.stderr, flush=True)\nprint(3, flush=True)\n"
    task = make_task("python", code)
    task = task.model_copy(update={"run": task.run.model_copy(update={"merge_stderr": True})})
    # When the runner runs it
    report = run_pod(task).report
    # Then one stream holds both, in write order
    assert stdout_of(report) == b"1\n2\n3\n"
    assert report.cases[0].stderr.total_bytes == 0


def test_the_program_sees_the_fixed_environment_and_nothing_of_the_runner(run_pod: RunPod) -> None:
    # Given a task in several env chunks (300 KB of stdin), and a secret in the container's environment
    task = make_task("python", PRINT_ENVIRONMENT, cases=[TaskCase(stdin_b64=b64(b"y" * 300_000))])
    # When it runs
    report = run_pod(task, env={"SERVICE_SECRET": "do-not-leak"}).report
    # Then the program saw only its fixed environment, in a fresh /tmp
    assert stdout_of(report) == b"HOME LANG LC_ALL PATH PYTHONIOENCODING TMPDIR /tmp /tmp\n"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({constants.PHASE_ENV: ""}, "RUNNER_PHASE must be", id="no-phase"),
        pytest.param({"RUNNER_TASK_0": "not base64!"}, "could not read its task", id="not-base64"),
        pytest.param(
            {"RUNNER_TASK_0": base64.b64encode(b"[1, 2]").decode()}, "must be a JSON object", id="array"
        ),
        pytest.param(
            {"RUNNER_TASK_0": base64.b64encode(b"{}").decode()}, "the runner failed: KeyError", id="fields"
        ),
        pytest.param({"RUNNER_TASK_CHUNKS": "2"}, "could not read its task", id="missing-chunk"),
    ],
)
def test_a_bad_task_still_gets_a_report(run_pod: RunPod, env: dict[str, str], expected: str) -> None:
    # Given a container whose task the runner cannot use / When it runs
    (container,) = run_pod(make_task("python", "print(1)\n"), env=env).containers
    # Then it still writes one report, with internal_error, and exits 1 (the pod stops there)
    assert container.outcome.exit_code == 1
    assert container.report.internal_error is not None
    assert expected in container.report.internal_error


def test_the_budget_clamps_cases_and_skips_the_rest(run_task: RunTask) -> None:
    # Given three endless cases, a 1 s timeout each and a 1.5 s budget for the whole request
    task = make_task(
        "python", "while True:\n    pass\n", cases=[TaskCase()] * 3, timeout_s=1.0, total_budget_s=1.5
    )
    # When run
    started = time.monotonic()
    report = run_task(task)
    # Then the first case gets its 1 s, the second what is left, the third does not run
    assert [case.timed_out for case in report.cases] == [True, True, False]
    assert report.cases[1].wall_time_s < 0.9
    assert report.cases[2].not_run
    assert [judgement.verdict for judgement in judged(task, report)] == [Verdict.TIME_LIMIT_EXCEEDED] * 3
    assert time.monotonic() - started < 1.5 + 2


def test_large_stdin_the_program_never_reads_does_not_block(run_task: RunTask) -> None:
    # Given 512 KiB of stdin (the service's cap; far beyond a pipe's buffer) for a program that exits without
    # reading it / When run
    stdin = b64(b"y" * (512 << 10))
    report = run_task(make_task("python", "print('done')\n", cases=[TaskCase(stdin_b64=stdin)]))
    # Then it simply exits 0
    assert (report.cases[0].exit_code, stdout_of(report)) == (0, b"done\n")


def test_nothing_a_case_started_outlives_it(run_task: RunTask) -> None:
    # Given a program that leaves a daemon behind (its own session, stdout closed), then the same program
    # listing every process it can see
    source = (
        "import os, sys\n"
        "pids = sorted(int(name) for name in os.listdir('/proc') if name.isdigit())\n"
        "print(pids == [1, os.getpid()], flush=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    os.close(1)\n"
        "    os.execvp('sleep', ['sleep', '60'])\n"
    )
    # When it runs as two cases
    started = time.monotonic()
    report = run_task(make_task("python", source, cases=[TaskCase(), TaskCase()]))
    # Then both answered at once, and the second case saw only the runner and itself: the daemon is gone
    assert [stdout_of(report, index) for index in (0, 1)] == [b"True\n", b"True\n"]
    assert time.monotonic() - started < 10


def test_stderr_is_captured_and_capped_separately(run_task: RunTask) -> None:
    source = "import sys\nsys.stderr.write('e' * 100000)\nprint('out')\n"
    case = run_task(make_task("python", source, output_limit_bytes=1000)).cases[0]
    assert (unb64(case.stdout.data_b64), case.stdout.total_bytes) == (b"out\n", 4)
    assert (unb64(case.stderr.data_b64), case.stderr.total_bytes) == (b"e" * 1000, 100000)
    assert unb64(case.stderr.tail_b64) == b"e" * 4096


def test_writing_a_file_beyond_the_size_limit_dies_of_sigxfsz(run_task: RunTask) -> None:
    # Given a 1 MiB file size limit and a program writing 2 MiB to a file
    source = "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\nopen('f', 'wb').write(b'x' * (2 << 20))\n"
    task = make_task("python", source, max_file_size_bytes=1 << 20)
    report = run_task(task)
    # Then it died of SIGXFSZ: output_limit_exceeded
    assert report.cases[0].signal == 25
    assert judged(task, report)[0].verdict is Verdict.OUTPUT_LIMIT_EXCEEDED


def with_language(task: RunnerTask, **changes: object) -> RunnerTask:
    return task.model_copy(update={"language": task.language.model_copy(update=changes)})


def test_a_missing_interpreter_is_an_internal_error_naming_it(run_task: RunTask) -> None:
    # Given a run step whose command does not exist on PATH
    task = make_task("python", "print(1)\n")
    task = task.model_copy(update={"run": task.run.model_copy(update={"argv": ("no-such-interpreter", "x")})})
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
    assert report.cases[0].exit_code == 0


def test_the_program_gets_only_its_three_standard_descriptors(run_task: RunTask) -> None:
    source = "import os\nprint(sorted(int(fd) for fd in os.listdir('/proc/self/fd'))[:3], len(os.listdir('/proc/self/fd')))\n"
    # The listing opens one descriptor of its own: 0, 1, 2 and that one
    assert stdout_of(run_task(make_task("python", source))) == b"[0, 1, 2] 4\n"


def test_cases_share_no_files(run_task: RunTask) -> None:
    # Given a program that lists, then litters, its working directory, its box and /dev/shm, one of them
    # with a directory it made unwritable
    source = (
        "import os\n"
        "print(sorted(os.listdir('.')), sorted(os.listdir('/box')), sorted(os.listdir('/dev/shm')))\n"
        "os.makedirs('locked/inner')\n"
        "open('locked/inner/f', 'w').write('x')\n"
        "os.chmod('locked', 0)\n"
        "os.symlink('/box', 'box-link')\n"
        "open('/box/extra.py', 'w').write('x')\n"
        "open('/dev/shm/left', 'w').write('x')\n"
    )
    # When it runs for two cases / Then the second starts from what the first started from
    report = run_task(make_task("python", source, cases=[TaskCase(), TaskCase()]))
    assert [stdout_of(report, index) for index in (0, 1)] == [b"[] ['main.py'] []\n"] * 2


def test_emptying_a_dir_never_follows_a_link_out_of_it(tmp_path: Path) -> None:
    # Given a scratch dir holding links to a file and a folder outside it, and nested folders
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    scratch = tmp_path / "scratch"
    (scratch / "a" / "b").mkdir(parents=True)
    (scratch / "a" / "b" / "f").write_text("x")
    (scratch / "link").symlink_to(outside)
    (scratch / "a" / "file-link").symlink_to(outside / "keep.txt")
    # When the runner empties it
    runner_workdir.empty_dir(str(scratch))
    # Then it is empty, and what the links pointed at is untouched
    assert list(scratch.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "precious"
