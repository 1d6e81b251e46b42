"""The runner program, per language: the real toolchains on this machine, in containers as a pod runs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from functions.core.protocol import ProcessReport, RunnerReport, RunnerTask, TaskCase
from functions.core.verdicts import TIMEOUT_EXIT_CODE, Verdict
from tests.unit.conftest import b64, judged, make_task, needs_toolchain, unb64

RunTask = Callable[[RunnerTask], RunnerReport]
PROMPT_S = 10  # generous bound for "answered promptly"


@dataclass(frozen=True)
class Programs:
    hello: str
    echo_stdin: str
    print_args: str
    exit_3: str
    infinite_loop: str
    allocate_512_mb: str
    print_10_mb: str


PROGRAMS = {
    "python": Programs(
        hello='print("Hello, World!")\n',
        echo_stdin="import sys\nsys.stdout.write(sys.stdin.read())\n",
        print_args="import sys\nprint(' '.join(sys.argv[1:]))\n",
        exit_3="import sys\nsys.stderr.write('bye\\n')\nsys.exit(3)\n",
        infinite_loop="while True:\n    pass\n",
        allocate_512_mb="x = bytearray(512 * 1024 * 1024)\nprint(len(x))\n",
        print_10_mb="import sys\nsys.stdout.write('x' * (10 * 1024 * 1024))\n",
    ),
    "javascript": Programs(
        hello='console.log("Hello, World!");\n',
        echo_stdin="process.stdout.write(require('fs').readFileSync(0));\n",
        print_args="console.log(process.argv.slice(2).join(' '));\n",
        exit_3="console.error('bye');\nprocess.exit(3);\n",
        infinite_loop="for (;;) {}\n",
        allocate_512_mb="const a = [];\nfor (let i = 0; i < 512; i++) a.push(new Array(131072).fill(i + 0.5));\n",
        print_10_mb="process.stdout.write('x'.repeat(10 * 1024 * 1024));\n",
    ),
    "cpp": Programs(
        hello='#include <cstdio>\nint main() { std::puts("Hello, World!"); }\n',
        echo_stdin="#include <iostream>\nint main() { std::cout << std::cin.rdbuf(); }\n",
        print_args=(
            "#include <cstdio>\n"
            "int main(int argc, char** argv) {\n"
            '  for (int i = 1; i < argc; i++) std::printf(i > 1 ? " %s" : "%s", argv[i]);\n'
            '  std::puts("");\n'
            "}\n"
        ),
        exit_3='#include <cstdio>\nint main() { std::fputs("bye\\n", stderr); return 3; }\n',
        infinite_loop="int main() { volatile unsigned long n = 0; for (;;) n++; }\n",
        allocate_512_mb=(
            "#include <cstdio>\n#include <vector>\n"
            "int main() {\n"
            "  std::vector<std::vector<char>> blocks;\n"
            "  for (int i = 0; i < 512; i++) blocks.emplace_back(1 << 20, static_cast<char>(i));\n"
            "  long sum = 0;\n"
            "  for (auto& b : blocks) sum += b[4096];\n"
            '  std::printf("%ld\\n", sum);\n'
            "}\n"
        ),
        print_10_mb=(
            "#include <string>\n#include <cstdio>\n"
            "int main() { std::string s(10 << 20, 'x'); std::fwrite(s.data(), 1, s.size(), stdout); }\n"
        ),
    ),
    "java": Programs(
        hello='public class Main { public static void main(String[] a) { System.out.println("Hello, World!"); } }\n',
        echo_stdin=(
            "public class Main { public static void main(String[] a) throws Exception {"
            " System.in.transferTo(System.out); System.out.flush(); } }\n"
        ),
        print_args=(
            'public class Main { public static void main(String[] a) { System.out.println(String.join(" ", a)); } }\n'
        ),
        exit_3='public class Main { public static void main(String[] a) { System.err.println("bye"); System.exit(3); } }\n',
        infinite_loop="public class Main { public static void main(String[] a) { long n = 0; while (true) n++; } }\n",
        allocate_512_mb=(
            "public class Main { public static void main(String[] a) {"
            " byte[][] b = new byte[512][]; for (int i = 0; i < 512; i++) b[i] = new byte[1 << 20];"
            " System.out.println(b.length); } }\n"
        ),
        print_10_mb=(
            "public class Main { public static void main(String[] a) throws Exception {"
            ' byte[] b = "x".repeat(10 << 20).getBytes(); System.out.write(b); System.out.flush(); } }\n'
        ),
    ),
}

LANGUAGES = [pytest.param(name, id=name, marks=needs_toolchain(name)) for name in PROGRAMS]


def only_case(report: RunnerReport) -> ProcessReport:
    assert report.internal_error is None
    assert len(report.cases) == 1
    return report.cases[0]


def verdict_of(task: RunnerTask, report: RunnerReport) -> Verdict:
    (judgement,) = judged(task, report)
    return judgement.verdict


def text(stream_b64: str) -> bytes:
    return unb64(stream_b64)


@pytest.mark.parametrize("name", LANGUAGES)
def test_hello_world_exits_zero_with_the_real_version(run_task: RunTask, name: str) -> None:
    # Given a hello-world program / When the runner runs it
    task = make_task(name, PROGRAMS[name].hello)
    report = run_task(task)
    # Then it exits 0, prints the greeting, is accepted, and the toolchain's real version is reported
    case = only_case(report)
    assert (case.exit_code, case.signal, text(case.stdout.data_b64)) == (0, None, b"Hello, World!\n")
    assert verdict_of(task, report) is Verdict.ACCEPTED
    assert report.language_version[0].isdigit()
    assert case.memory_kb > 0
    assert case.wall_time_s > 0


@pytest.mark.parametrize("name", LANGUAGES)
def test_stdin_is_echoed(run_task: RunTask, name: str) -> None:
    # Given a program that copies stdin to stdout and 1 MiB of input
    data = b"line one\nline two\n" + b"z" * (1024 * 1024)
    task = make_task(
        name, PROGRAMS[name].echo_stdin, cases=[TaskCase(stdin_b64=b64(data))], output_limit_bytes=2 << 20
    )
    # When it runs / Then every byte comes back (large stdin does not deadlock)
    case = only_case(run_task(task))
    assert (case.exit_code, text(case.stdout.data_b64)) == (0, data)


@pytest.mark.parametrize("name", LANGUAGES)
def test_args_are_passed(run_task: RunTask, name: str) -> None:
    # Given arguments with a space and a shell metacharacter / When run
    case = only_case(run_task(make_task(name, PROGRAMS[name].print_args, args=["a b", "$HOME", "c"])))
    # Then the program receives them verbatim, no shell in between
    assert (case.exit_code, text(case.stdout.data_b64)) == (0, b"a b $HOME c\n")


@pytest.mark.parametrize("name", LANGUAGES)
def test_non_zero_exit_is_reported_with_its_code(run_task: RunTask, name: str) -> None:
    # Given a program exiting 3 / When run
    task = make_task(name, PROGRAMS[name].exit_3)
    report = run_task(task)
    # Then its exit code and stderr are the facts, and the judge calls it a runtime error
    case = only_case(report)
    assert (case.exit_code, case.signal, text(case.stderr.data_b64)) == (3, None, b"bye\n")
    assert verdict_of(task, report) is Verdict.RUNTIME_ERROR


@pytest.mark.parametrize("name", LANGUAGES)
def test_infinite_loop_is_killed_at_the_timeout(run_task: RunTask, name: str) -> None:
    # Given a program that never ends and a 1 s timeout
    task = make_task(name, PROGRAMS[name].infinite_loop, timeout_s=1.0)
    # When run
    report = run_task(task)
    # Then the runner killed it at its limit (SIGKILL, timed out), within timeout + 2 s
    case = only_case(report)
    assert (case.timed_out, case.exit_code, case.signal) == (True, None, 9)
    (judgement,) = judged(task, report)
    assert (judgement.verdict, judgement.exit_code) == (Verdict.TIME_LIMIT_EXCEEDED, TIMEOUT_EXIT_CODE)
    assert 0.9 <= case.wall_time_s < 3


@pytest.mark.parametrize("name", LANGUAGES)
def test_allocation_beyond_the_memory_limit(run_task: RunTask, name: str) -> None:
    # Given a 64 MB limit and a program that allocates 512 MB
    task = make_task(name, PROGRAMS[name].allocate_512_mb, memory_limit_mb=64)
    # When run / Then it fails the way its runtime fails for memory, and the judge calls it so
    report = run_task(task)
    case = only_case(report)
    assert text(case.stdout.data_b64) == b""
    assert verdict_of(task, report) is Verdict.MEMORY_LIMIT_EXCEEDED


@pytest.mark.parametrize("name", LANGUAGES)
def test_ten_mb_of_output_is_kept_capped_and_counted(run_task: RunTask, name: str) -> None:
    # Given a program printing 10 MB and a 64 KiB output limit
    task = make_task(name, PROGRAMS[name].print_10_mb, output_limit_bytes=64 * 1024)
    # When run
    started = time.monotonic()
    report = run_task(task)
    # Then it is not killed for printing: the first 64 KiB are kept, every byte counted, promptly
    case = only_case(report)
    assert case.exit_code == 0
    assert text(case.stdout.data_b64) == b"x" * (64 * 1024)
    assert case.stdout.total_bytes == 10 * 1024 * 1024
    assert text(case.stdout.tail_b64) == b"x" * 4096
    assert case.stderr.total_bytes == 0
    assert time.monotonic() - started < PROMPT_S


@pytest.mark.parametrize("name", LANGUAGES)
def test_test_cases_compile_once_and_are_judged_each(run_task: RunTask, name: str) -> None:
    # Given three cases for an echo program, the second one expecting something else
    cases = [TaskCase(stdin_b64=b64(f"{n}\n")) for n in (1, 2, 3)]
    task = make_task(name, PROGRAMS[name].echo_stdin, cases=cases)
    # When run
    report = run_task(task)
    # Then one set of facts per case, in order; a compiled language compiled once for all of them
    assert [text(case.stdout.data_b64) for case in report.cases] == [b"1\n", b"2\n", b"3\n"]
    verdicts = [j.verdict for j in judged(task, report, ["1  \n\n", "3\n", "3\n"])]
    assert verdicts == [Verdict.ACCEPTED, Verdict.WRONG_ANSWER, Verdict.ACCEPTED]
    assert (report.compile is not None) == (name in {"cpp", "java"})
    if report.compile is not None:
        assert report.compile.exit_code == 0


COMPILE_ERRORS = {
    "cpp": ("int main() { return undefined_name; }\n", b"undefined_name"),
    "java": (
        'public class Main { public static void main(String[] a) { int x = "s"; } }\n',
        b"incompatible types",
    ),
}


@pytest.mark.parametrize(
    "name", [pytest.param(name, id=name, marks=needs_toolchain(name)) for name in COMPILE_ERRORS]
)
def test_compile_error_reports_the_compiler_output_and_runs_nothing(run_task: RunTask, name: str) -> None:
    source, expected_message = COMPILE_ERRORS[name]
    # Given a program that does not compile / When run
    report = run_task(make_task(name, source))
    # Then the compile step failed with the compiler's message (stdout and stderr merged) and no case ran
    assert report.compile is not None
    assert report.compile.exit_code not in (0, None)
    assert expected_message in text(report.compile.stdout.data_b64)
    assert report.cases == []


@needs_toolchain("cpp")
def test_cpp_segfault_is_death_by_sigsegv(run_task: RunTask) -> None:
    # Given a C++ program writing through a null pointer the compiler cannot see
    source = "int main() { volatile int* volatile p = nullptr; *p = 1; return 0; }\n"
    task = make_task("cpp", source)
    # When run / Then it died of SIGSEGV: runtime_error, exit code 128 + 11
    report = run_task(task)
    case = only_case(report)
    assert (case.exit_code, case.signal) == (None, 11)
    (judgement,) = judged(task, report)
    assert (judgement.verdict, judgement.exit_code, judgement.signal_name) == (
        Verdict.RUNTIME_ERROR,
        139,
        "SIGSEGV",
    )


@needs_toolchain("java")
def test_java_public_class_with_any_name(run_task: RunTask) -> None:
    # Given a Java program whose public class is not Main (after a package-private helper class)
    source = (
        'import java.util.*;\n\nclass Helper { static String greet() { return "hi"; } }\n\n'
        "public final class Greeter {\n    public static void main(String[] a) { System.out.println(Helper.greet()); }\n}\n"
    )
    # When run / Then it compiles as Greeter.java and runs
    case = only_case(run_task(make_task("java", source)))
    assert (case.exit_code, text(case.stdout.data_b64)) == (0, b"hi\n")
