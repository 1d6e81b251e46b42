"""The runner program, per language: the real toolchains on this machine, in containers as a pod runs them."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from functions.core.languages import LanguageSpec
from functions.core.protocol import ProcessReport, RunnerReport, RunnerTask, TaskCase
from functions.core.verdicts import TIMEOUT_EXIT_CODE, Verdict
from tests.conformance import program, registry
from tests.sandbox.conftest import b64, judged, make_task, unb64

RunTask = Callable[[RunnerTask], RunnerReport]
PROMPT_S = 10  # generous bound for "answered promptly"


LANGUAGES = [pytest.param(language, id=language.name) for language in registry().all()]
COMPILED = [pytest.param(language, id=language.name) for language in registry().all() if language.compiled]


def only_case(report: RunnerReport) -> ProcessReport:
    assert report.internal_error is None
    assert len(report.cases) == 1
    return report.cases[0]


def verdict_of(task: RunnerTask, report: RunnerReport) -> Verdict:
    (judgement,) = judged(task, report)
    return judgement.verdict


def text(stream_b64: str) -> bytes:
    return unb64(stream_b64)


@pytest.mark.parametrize("language", LANGUAGES)
def test_hello_world_exits_zero_with_the_real_version(run_task: RunTask, language: LanguageSpec) -> None:
    # Given the folder's hello world / When the runner runs it
    task = make_task(language.name, program(language, "hello"))
    report = run_task(task)
    # Then it exits 0, prints the greeting, is accepted, and the toolchain's real version is reported
    case = only_case(report)
    assert (case.exit_code, case.signal, text(case.stdout.data_b64)) == (0, None, b"Hello, World!\n")
    assert verdict_of(task, report) is Verdict.ACCEPTED
    assert report.language_version[0].isdigit()
    assert case.memory_kb > 0
    assert case.wall_time_s > 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_stdin_is_echoed(run_task: RunTask, language: LanguageSpec) -> None:
    # Given a program that copies stdin to stdout and 1 MiB of input
    data = b"line one\nline two\n" + b"z" * (1024 * 1024)
    task = make_task(
        language.name,
        program(language, "echo_stdin"),
        cases=[TaskCase(stdin_b64=b64(data))],
        output_limit_bytes=2 << 20,
    )
    # When it runs / Then every byte comes back (large stdin does not deadlock)
    case = only_case(run_task(task))
    assert (case.exit_code, text(case.stdout.data_b64)) == (0, data)


@pytest.mark.parametrize("language", LANGUAGES)
def test_args_are_passed(run_task: RunTask, language: LanguageSpec) -> None:
    # Given arguments with a space and a shell metacharacter / When run
    task = make_task(language.name, program(language, "print_args"), args=["a b", "$HOME", "c"])
    case = only_case(run_task(task))
    # Then the program receives them verbatim, no shell in between
    assert (case.exit_code, text(case.stdout.data_b64)) == (0, b"a b $HOME c\n")


@pytest.mark.parametrize("language", LANGUAGES)
def test_non_zero_exit_is_reported_with_its_code(run_task: RunTask, language: LanguageSpec) -> None:
    # Given a program exiting 3 / When run
    task = make_task(language.name, program(language, "exit_3"))
    report = run_task(task)
    # Then its exit code is the evidence, and the judge calls it a runtime error
    case = only_case(report)
    assert (case.exit_code, case.signal) == (3, None)
    assert verdict_of(task, report) is Verdict.RUNTIME_ERROR


@pytest.mark.parametrize("language", LANGUAGES)
def test_infinite_loop_is_killed_at_the_timeout(run_task: RunTask, language: LanguageSpec) -> None:
    # Given a program that never ends and a 1 s timeout
    task = make_task(language.name, program(language, "infinite_loop"), timeout_s=1.0)
    # When run
    report = run_task(task)
    # Then the runner killed it at its limit (SIGKILL, timed out), within timeout + 2 s
    case = only_case(report)
    assert (case.timed_out, case.exit_code, case.signal) == (True, None, 9)
    (judgement,) = judged(task, report)
    assert (judgement.verdict, judgement.exit_code) == (Verdict.TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE)
    assert 0.9 <= case.wall_time_s < 3


@pytest.mark.parametrize("language", LANGUAGES)
def test_allocation_beyond_the_memory_limit(run_task: RunTask, language: LanguageSpec) -> None:
    # Given a 64 MB limit and a program that allocates 512 MB
    task = make_task(language.name, program(language, "allocate_512mb"), memory_limit_mb=64)
    # When run / Then it fails the way its runtime fails for memory, and the judge calls it so
    report = run_task(task)
    case = only_case(report)
    assert text(case.stdout.data_b64) == b""
    assert verdict_of(task, report) is Verdict.MEMORY_LIMIT_EXCEEDED


@pytest.mark.parametrize("language", LANGUAGES)
def test_ten_mb_of_output_is_kept_capped_and_counted(run_task: RunTask, language: LanguageSpec) -> None:
    # Given a program printing 10 MB and a 64 KiB output limit
    task = make_task(language.name, program(language, "print_10mb"), output_limit_bytes=64 * 1024)
    # When run
    started = time.monotonic()
    report = run_task(task)
    # Then it is not killed for printing: the first 64 KiB are kept, every byte counted, promptly
    case = only_case(report)
    assert case.exit_code == 0
    assert text(case.stdout.data_b64) == b"x" * (64 * 1024)
    assert case.stdout.total_bytes == 10_000_000
    assert text(case.stdout.tail_b64) == b"x" * 4096
    assert case.stderr.total_bytes == 0
    assert time.monotonic() - started < PROMPT_S


@pytest.mark.parametrize("language", LANGUAGES)
def test_test_cases_compile_once_and_are_judged_each(run_task: RunTask, language: LanguageSpec) -> None:
    # Given three cases for an echo program, the second one expecting something else
    cases = [TaskCase(stdin_b64=b64(f"{n}\n")) for n in (1, 2, 3)]
    task = make_task(language.name, program(language, "echo_stdin"), cases=cases)
    # When run
    report = run_task(task)
    # Then one report of evidence per case, in order; a compiled language compiled once for all of them
    assert [text(case.stdout.data_b64) for case in report.cases] == [b"1\n", b"2\n", b"3\n"]
    verdicts = [j.verdict for j in judged(task, report, ["1  \n\n", "3\n", "3\n"])]
    assert verdicts == [Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.ACCEPTED]
    assert (report.compile is not None) == language.compiled
    if report.compile is not None:
        assert report.compile.exit_code == 0


@pytest.mark.parametrize("language", COMPILED)
def test_compile_error_reports_the_compiler_output_and_runs_nothing(
    run_task: RunTask, language: LanguageSpec
) -> None:
    # Given a program that does not compile / When run
    report = run_task(make_task(language.name, program(language, "compile_error")))
    # Then the compile step failed with the compiler's message (stdout and stderr merged) and no case ran
    assert report.compile is not None
    assert report.compile.exit_code not in (0, None)
    assert text(report.compile.stdout.data_b64).strip()
    assert report.cases == []
