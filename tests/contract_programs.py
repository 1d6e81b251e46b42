"""The execution contract every backend honours: per-language programs, and the answer each must get.

One table, two suites: tests/integration/test_http_contract.py (the local sandbox, over real HTTP) and
tests/cluster/test_kubernetes_backend.py (a Kubernetes Job per run on the real control plane, through the
handler) both parametrize their `test_contract` from CONTRACT_CASES, so the same request must give the same
answer whichever backend runs it. Each suite keeps its backend's own extra checks (timing bounds, Job cleanup).
Programs are sent with `encoding: text` for readability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ["python", "javascript", "cpp", "java"]
COMPILED = ["cpp", "java"]

HELLO = {
    "python": 'print("Hello, World!")',
    "javascript": 'console.log("Hello, World!")',
    "cpp": '#include <iostream>\nint main() { std::cout << "Hello, World!" << std::endl; }',
    "java": 'public class Main { public static void main(String[] a) { System.out.println("Hello, World!"); } }',
}
ECHO_STDIN = {
    "python": "import sys\nsys.stdout.write(sys.stdin.read())",
    "javascript": 'process.stdout.write(require("fs").readFileSync(0))',
    "cpp": "#include <iostream>\nint main() { std::cout << std::cin.rdbuf(); }",
    "java": "public class Main { public static void main(String[] a) throws Exception {"
    " System.in.transferTo(System.out); } }",
}
PRINT_ARGS = {
    "python": 'import sys\nprint(" ".join(sys.argv[1:]))',
    "javascript": 'console.log(process.argv.slice(2).join(" "))',
    "cpp": "#include <iostream>\nint main(int argc, char** argv) {"
    ' for (int i = 1; i < argc; ++i) std::cout << argv[i] << (i + 1 < argc ? " " : "\\n"); }',
    "java": 'public class Main { public static void main(String[] a) { System.out.println(String.join(" ", a)); } }',
}
EXIT_3 = {
    "python": "import sys\nsys.exit(3)",
    "javascript": "process.exit(3)",
    "cpp": "int main() { return 3; }",
    "java": "public class Main { public static void main(String[] a) { System.exit(3); } }",
}
COMPILE_ERROR = {
    "cpp": "int main() { return undeclared; }",
    "java": "public class Main { public static void main(String[] a) { int x = } }",
}
INFINITE_LOOP = {
    "python": "while True:\n    pass",
    "javascript": "while (true) {}",
    "cpp": "int main() { volatile unsigned long i = 0; for (;;) ++i; }",
    "java": "public class Main { public static void main(String[] a) { while (true) {} } }",
}
# Every program touches what it allocates, so a lazily committed allocation cannot slip past the limit.
ALLOCATE_512_MB = {
    "python": 'data = b"x" * (512 * 1024 * 1024)\nprint(len(data))',
    "javascript": "const chunks = []; for (;;) chunks.push(new Array(1 << 20).fill(1));",
    "cpp": "#include <vector>\n#include <iostream>\n"
    "int main() { std::vector<char> v(512u << 20, 1); std::cout << int(v[12345]) << std::endl; }",
    "java": "import java.util.*;\npublic class Main { public static void main(String[] a) {"
    " List<byte[]> l = new ArrayList<>(); for (int i = 0; i < 512; i++) { byte[] b = new byte[1 << 20];"
    " Arrays.fill(b, (byte) 1); l.add(b); } System.out.println(l.size()); } }",
}
# Doubles its input. The compiled ones also print, on stderr, the identity of the binary that runs
# (inode and mtime of the executable or class file): identical across cases <=> compiled once.
DOUBLE = {
    "python": "print(int(input()) * 2)",
    "javascript": 'console.log(parseInt(require("fs").readFileSync(0, "utf8")) * 2)',
    "cpp": "#include <iostream>\n#include <sys/stat.h>\n"
    "int main(int argc, char** argv) { long long n; std::cin >> n; std::cout << n * 2 << std::endl;"
    ' struct stat st; if (stat("/proc/self/exe", &st) != 0 && stat(argv[0], &st) != 0) return 0;'
    ' std::cerr << st.st_ino << ":" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec; }',
    "java": "import java.nio.file.*;\npublic class Main { public static void main(String[] a) throws Exception {"
    " long n = new java.util.Scanner(System.in).nextLong(); System.out.println(n * 2);"
    ' java.net.URL u = Main.class.getResource("Main.class");'
    ' System.err.print(u == null ? "no-class-file" : Files.getLastModifiedTime(Paths.get(u.toURI())).toString()); } }',
}

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

# Behaviours, the first part of every case id.
HELLO_WORLD = "hello_world"
STDIN = "stdin"
ARGUMENTS = "args"
RUNTIME_ERROR = "runtime_error"
COMPILATION_ERROR = "compile_error"
TIME_LIMIT = "time_limit"
MEMORY_LIMIT = "memory_limit"
TEST_CASES = "test_cases"


@dataclass(frozen=True)
class ContractCase:
    """One request and what its response must hold."""

    behaviour: str
    language: str
    code: str
    fields: Mapping[str, Any]  # the request's other fields
    equal: Mapping[str, Any]  # response field -> its exact value
    not_equal: Mapping[str, Any] = field(default_factory=dict)  # response field -> a value it must not have
    non_blank: tuple[str, ...] = ()  # text fields that must say something
    case_results: tuple[tuple[str, str], ...] | None = None  # (verdict, stdout) of each test case
    compiled_once: bool = False  # every test case ran the very same binary

    @property
    def id(self) -> str:
        return f"{self.behaviour}-{self.language}"

    def request(self) -> dict[str, Any]:
        return {"language": self.language, "code": self.code, "encoding": "text", **self.fields}

    def check(self, body: Mapping[str, Any]) -> None:
        """Assert the response body honours the contract (the stderr tail explains a wrong verdict)."""
        assert {key: body[key] for key in self.equal} == dict(self.equal), str(body.get("stderr"))[-500:]
        for key, value in self.not_equal.items():
            assert body[key] != value, (key, body[key])
        for key in self.non_blank:
            assert str(body[key]).strip(), f"{key} is blank"
        if self.case_results is not None:
            results = body["test_results"]
            assert [(result["verdict"], result["stdout"]) for result in results] == list(self.case_results)
        if self.compiled_once:
            identities = {result["stderr"] for result in body["test_results"]}
            assert len(identities) == 1, identities
            assert identities != {""}
            assert identities != {"no-class-file"}


def _per_language(language: str) -> list[ContractCase]:
    failed = {"status": "failed"}
    return [
        ContractCase(
            HELLO_WORLD,
            language,
            HELLO[language],
            {},
            {"status": "success", "verdict": "accepted", "stdout": "Hello, World!\n", "exit_code": 0}
            | {"language": language},
            non_blank=("language_version",),
        ),
        ContractCase(
            STDIN,
            language,
            ECHO_STDIN[language],
            {"stdin": STDIN_TEXT},
            {"verdict": "accepted", "stdout": STDIN_TEXT},
        ),
        ContractCase(
            ARGUMENTS,
            language,
            PRINT_ARGS[language],
            {"args": ARGS},
            {"verdict": "accepted", "stdout": "a b -x ç\n"},
        ),
        ContractCase(
            RUNTIME_ERROR,
            language,
            EXIT_3[language],
            {},
            failed | {"verdict": "runtime_error", "exit_code": 3},
        ),
        ContractCase(
            TIME_LIMIT,
            language,
            INFINITE_LOOP[language],
            {"timeout": TLE_TIMEOUT_S},
            failed | {"verdict": "time_limit_exceeded", "exit_code": 124},
            non_blank=("stderr",),  # the seed's note that the time limit was hit
        ),
        ContractCase(
            MEMORY_LIMIT,
            language,
            ALLOCATE_512_MB[language],
            {"memory_limit_mb": MLE_LIMIT_MB},
            failed | {"verdict": "memory_limit_exceeded"},
        ),
        # Each case has its own verdict, and the top level reports the first failure.
        ContractCase(
            TEST_CASES,
            language,
            DOUBLE[language],
            {"test_cases": DOUBLE_CASES},
            failed | {"verdict": "wrong_answer"},
            case_results=(("accepted", "2\n"), ("wrong_answer", "4\n"), ("accepted", "6\n")),
            compiled_once=language in COMPILED,
        ),
    ]


def _compile_errors() -> list[ContractCase]:
    return [
        ContractCase(
            COMPILATION_ERROR,
            language,
            COMPILE_ERROR[language],
            {},
            {"status": "failed", "verdict": "compilation_error"},
            not_equal={"exit_code": 0},
            non_blank=("compile_output",),
        )
        for language in COMPILED
    ]


CONTRACT_CASES = sorted(
    [case for language in LANGUAGES for case in _per_language(language)] + _compile_errors(),
    key=lambda case: (case.behaviour, LANGUAGES.index(case.language)),
)
