"""LocalBackend end to end with the real toolchains: steps, budget, capacity, artifacts, cleanup."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from functions.backends.local.backend import LocalBackend, create_backend
from functions.core.errors import CapacityExhaustedError, DeadlineExceededError
from functions.core.languages import LanguageSpec, load_registry
from functions.core.models import ExecuteRequest, ExecuteResponse
from functions.core.results import build_response
from functions.core.spec import PreparedRun, prepare_run
from functions.core.verdicts import Verdict
from functions.settings import DEFAULT_RUNNERS_DIR, Settings
from functions.wiring import sync_policy
from tests.sandbox_support import assert_nothing_left, sandbox_settings

pytestmark = [pytest.mark.sandbox]

MakeBackend = Callable[..., LocalBackend]
# The service's own limits, with shorter defaults and smaller caps so the tests stay quick.
POLICY = replace(
    sync_policy(Settings()),
    default_timeout_s=5.0,
    total_budget_s=20.0,
    default_memory_limit_mb=128,
    max_stdin_bytes=65536,
    max_test_cases=8,
    max_args=8,
    max_arg_bytes=256,
    max_processes=32,
    max_file_size_bytes=1 << 20,
)


def _prepare(language: str, code: str, **fields: object) -> PreparedRun:
    request = ExecuteRequest.model_validate(
        {"language": language, "code": code, "encoding": "text", **fields}
    )
    return prepare_run(request, load_registry(DEFAULT_RUNNERS_DIR), POLICY)


def _execute(backend: LocalBackend, language: str, code: str, **fields: object) -> ExecuteResponse:
    prepared = _prepare(language, code, **fields)
    return build_response(prepared.plan, backend.run(prepared.task, budget_s=30.0))


@pytest.fixture
def make_backend() -> Iterator[MakeBackend]:
    made: list[tuple[LocalBackend, Settings]] = []

    def make(**overrides: object) -> LocalBackend:
        settings = sandbox_settings(**overrides)
        backend = create_backend(settings)
        made.append((backend, settings))
        return backend

    yield make
    for backend, settings in made:
        backend.close()
        assert_nothing_left(backend.host, settings)


@pytest.fixture
def backend(make_backend: MakeBackend) -> LocalBackend:
    return make_backend()


def test_compiled_once_then_each_case_in_its_own_sandbox(backend: LocalBackend) -> None:
    # Given a C++ program run on three cases, each printing its sandbox's identity and the binary's inode
    code = (
        "#include <iostream>\n#include <fstream>\n#include <unistd.h>\n#include <sys/stat.h>\n"
        'int main() { long long n; std::cin >> n; struct stat st; stat("/box/main", &st);'
        " std::ifstream("
        '"/tmp/mark").good() ? std::cout << "seen" : std::cout << n * 2;'
        ' std::ofstream("/tmp/mark") << 1; std::cerr << st.st_ino; }'
    )
    cases = [{"stdin": str(n), "expected_output": str(n * 2)} for n in (1, 2, 3)]
    response = _execute(backend, "cpp", code, test_cases=cases)
    # Then every case ran the same binary, and none saw what the one before left in /tmp
    assert response.verdict is Verdict.ACCEPTED, response
    assert response.test_results is not None
    assert len({result.stderr for result in response.test_results}) == 1


def test_budget_shorter_than_the_run_raises_deadline(backend: LocalBackend) -> None:
    # Given a program that loops for its whole 10 s timeout and a 1 s budget
    prepared = _prepare("python", "while True: pass", timeout=10)
    started_s = time.monotonic()
    # When / Then
    with pytest.raises(DeadlineExceededError) as caught:
        backend.run(prepared.task, budget_s=1.0)
    assert caught.value.execution_id == prepared.task.execution_id
    assert time.monotonic() - started_s < 1.0 + 5.0  # generous: the kill is immediate


def test_cases_beyond_the_task_budget_are_not_run(make_backend: MakeBackend) -> None:
    backend = make_backend()
    prepared = prepare_run(
        ExecuteRequest.model_validate(
            {
                "language": "python",
                "code": "while True: pass",
                "encoding": "text",
                "timeout": 1,
                "test_cases": [{"stdin": ""}] * 3,
            }
        ),
        load_registry(DEFAULT_RUNNERS_DIR),
        replace(POLICY, total_budget_s=1.5),
    )
    response = build_response(prepared.plan, backend.run(prepared.task, budget_s=30.0))
    assert response.test_results is not None
    assert [result.verdict for result in response.test_results] == [Verdict.TIME_LIMIT_EXCEEDED] * 3
    assert "not run" in response.test_results[2].stderr


def test_full_pool_answers_capacity_exhausted(make_backend: MakeBackend) -> None:
    backend = make_backend(local_max_concurrency=1, local_queue_wait_s=0.0)
    with backend.pool.slot(), pytest.raises(CapacityExhaustedError) as caught:
        backend.run(_prepare("python", "print(1)").task, budget_s=30.0)
    assert caught.value.retry_after_s is not None


def test_a_missing_compiler_is_a_compile_failure_that_says_so(make_backend: MakeBackend) -> None:
    # Given a C++ task whose compiler is not on the sandbox's PATH
    backend = make_backend()
    prepared = _prepare("cpp", "int main() {}")
    assert prepared.task.compile is not None
    compile_step = prepared.task.compile.model_copy(update={"argv": ("no-such-cc",)})
    task = prepared.task.model_copy(update={"compile": compile_step})
    response = build_response(prepared.plan, backend.run(task, budget_s=30.0))
    assert response.verdict is Verdict.COMPILATION_ERROR
    assert "no-such-cc" in response.compile_output


def test_the_version_is_measured_once_per_toolchain(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a count of the real version probes
    versions = backend.runner.versions
    probes: list[str] = []
    real_probe = versions._probe

    def counted(language: LanguageSpec) -> str:
        probes.append(language.name)
        return real_probe(language)

    monkeypatch.setattr(versions, "_probe", counted)
    # When two runs of the same language happen
    first = _execute(backend, "python", "print(1)").language_version
    second = _execute(backend, "python", "print(2)").language_version
    # Then the toolchain was probed once and its real version shown both times
    assert first == second != ""
    assert probes == ["python"]


ALLOCATE_100_MB = (
    "#include <cstdio>\n#include <cstdlib>\n"
    "int main() { volatile char* block = static_cast<char*>(std::malloc(100 << 20));"
    ' for (int i = 0; i < (100 << 20); i += 4096) block[i] = 1; std::printf("%d\\n", block[4096]); }'
)


@pytest.mark.parametrize(
    ("code", "low_kb", "high_kb"),
    [
        pytest.param(None, 0, 5 * 1024, id="hello-world-under-5-mb"),
        pytest.param(ALLOCATE_100_MB, 95 * 1024, 110 * 1024, id="100-mb-program"),
    ],
)
def test_memory_is_the_programs_own_peak(
    backend: LocalBackend, code: str | None, low_kb: int, high_kb: int
) -> None:
    # Given a C++ program (hello world, or one touching 100 MB)
    hello = (
        DEFAULT_RUNNERS_DIR / "cpp" / load_registry(DEFAULT_RUNNERS_DIR).get("cpp").test_program
    ).read_text()
    # When it runs
    response = _execute(backend, "cpp", code or hello)
    # Then the figure is its own peak (the sandbox's cgroup), not the supervisor's or a runtime's floor
    assert response.verdict is Verdict.ACCEPTED
    assert low_kb <= response.memory_kb <= high_kb, response.memory_kb


def test_merged_stderr_is_judged_as_stdout_in_write_order(backend: LocalBackend) -> None:
    # Given a program that alternates between its two streams, its stderr sent into its stdout
    code = "import sys\nfor n in range(3):\n    print(n, flush=True)\n    print('e', n, file=sys.stderr, flush=True)\n"
    expected = "0\ne 0\n1\ne 1\n2\ne 2\n"
    # When it runs against the interleaved text as its expected output
    response = _execute(
        backend, "python", code, merge_stderr=True, test_cases=[{"expected_output": expected}]
    )
    # Then the one stream is judged, in the order it was written, and stderr is empty
    assert (response.verdict, response.stdout, response.stderr) == (Verdict.ACCEPTED, expected, "")
