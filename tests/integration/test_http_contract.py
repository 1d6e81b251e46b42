"""The per-language contract through the whole embedded path: real HTTP -> local server -> Lambda handler ->
core -> local sandbox backend -> runner program -> the real toolchain.

Programs are sent with `encoding: text` for readability; the seed's base64 form has its own test.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.http_support import ApiResponse, http_call

pytestmark = [pytest.mark.sandbox]

LANGUAGES = ["python", "javascript", "cpp", "java"]
COMPILED = ["cpp", "java"]
TIMEOUT_SLACK_S = 2.0  # the bound: an infinite loop is answered within timeout + 2 s
OUTPUT_CAP_BYTES = 64 * 1024

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
PRINT_10_MB = {
    "python": 'import sys\nsys.stdout.write("x" * 10_000_000)',
    "javascript": 'process.stdout.write("x".repeat(10_000_000))',
    "cpp": "#include <iostream>\n#include <string>\nint main() { std::cout << std::string(10000000, 'x'); }",
    "java": "public class Main { public static void main(String[] a) {"
    ' System.out.print("x".repeat(10_000_000)); System.out.flush(); } }',
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


@dataclass(frozen=True)
class Timed:
    response: ApiResponse
    elapsed_s: float

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.response.json()
        return body


def execute(server: RunningServer, language: str, code: str, **fields: Any) -> Timed:
    started_s = time.monotonic()
    response = http_call(
        server.url, "POST", "/execute", {"language": language, "code": code, "encoding": "text", **fields}
    )
    elapsed_s = time.monotonic() - started_s
    assert response.status == 200, response.body[:500]
    return Timed(response, elapsed_s)


# --- the seed contract -------------------------------------------------------------------------------------


def test_seed_example_returns_hello_world_with_the_new_fields(local_server: RunningServer) -> None:
    # Given the seed's curl example: base64 of print("Hello, World!")
    code = base64.b64encode(b'print("Hello, World!")').decode()
    assert code == "cHJpbnQoIkhlbGxvLCBXb3JsZCEiKQ=="

    # When it is posted without an encoding
    response = http_call(local_server.url, "POST", "/execute", {"language": "python", "code": code})

    # Then the seed fields are the seed's, and the new fields are there
    body = response.json()
    assert response.status == 200
    assert (body["status"], body["stdout"], body["stderr"], body["exit_code"]) == (
        "success",
        "Hello, World!\n",
        "",
        0,
    )
    assert isinstance(body["execution_time"], float)
    assert (body["verdict"], body["signal"], body["compile_output"]) == ("accepted", None, "")
    assert body["truncated"] == {"stdout": False, "stderr": False}
    assert body["execution_id"]
    assert body["language"] == "python"
    assert body["language_version"][:1].isdigit()
    assert body["memory_kb"] > 0
    assert body["cpu_time"] >= 0


# --- per language -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_hello_world(local_server: RunningServer, language: str) -> None:
    body = execute(local_server, language, HELLO[language]).body

    assert (body["status"], body["verdict"], body["stdout"], body["exit_code"]) == (
        "success",
        "accepted",
        "Hello, World!\n",
        0,
    )
    assert body["language"] == language


@pytest.mark.parametrize("language", LANGUAGES)
def test_stdin_is_echoed(local_server: RunningServer, language: str) -> None:
    stdin = "line one\nzwei ünïcödé\n3\n"

    body = execute(local_server, language, ECHO_STDIN[language], stdin=stdin).body

    assert (body["verdict"], body["stdout"]) == ("accepted", stdin)


@pytest.mark.parametrize("language", LANGUAGES)
def test_args_reach_the_program(local_server: RunningServer, language: str) -> None:
    body = execute(local_server, language, PRINT_ARGS[language], args=["a b", "-x", "ç"]).body

    assert (body["verdict"], body["stdout"]) == ("accepted", "a b -x ç\n")


@pytest.mark.parametrize("language", LANGUAGES)
def test_non_zero_exit_is_a_runtime_error(local_server: RunningServer, language: str) -> None:
    body = execute(local_server, language, EXIT_3[language]).body

    assert (body["status"], body["verdict"], body["exit_code"]) == ("failed", "runtime_error", 3)


@pytest.mark.parametrize("language", COMPILED)
def test_compile_error(local_server: RunningServer, language: str) -> None:
    body = execute(local_server, language, COMPILE_ERROR[language]).body

    assert (body["status"], body["verdict"]) == ("failed", "compilation_error")
    assert body["compile_output"].strip()
    assert body["exit_code"] != 0


def test_segfault_is_a_runtime_error_with_the_signal(local_server: RunningServer) -> None:
    code = "int main() { volatile int* p = nullptr; *p = 42; return 0; }"

    body = execute(local_server, "cpp", code).body

    assert (body["verdict"], body["signal"], body["exit_code"]) == ("runtime_error", "SIGSEGV", 139)


@pytest.mark.parametrize("language", LANGUAGES)
def test_infinite_loop_times_out_promptly(local_server: RunningServer, language: str) -> None:
    timeout_s = 2.0

    timed = execute(local_server, language, INFINITE_LOOP[language], timeout=timeout_s)

    body = timed.body
    assert (body["status"], body["verdict"], body["exit_code"]) == ("failed", "time_limit_exceeded", 124)
    assert body["stderr"].strip()  # the seed's note that the time limit was hit
    assert timed.elapsed_s < timeout_s + TIMEOUT_SLACK_S


@pytest.mark.parametrize("language", LANGUAGES)
def test_allocation_beyond_the_limit_is_memory_limit_exceeded(
    local_server: RunningServer, language: str
) -> None:
    body = execute(local_server, language, ALLOCATE_512_MB[language], memory_limit_mb=64).body

    assert (body["status"], body["verdict"]) == ("failed", "memory_limit_exceeded"), body["stderr"][-500:]


@pytest.mark.parametrize("language", LANGUAGES)
def test_ten_megabytes_of_output_are_truncated_not_fatal(local_server: RunningServer, language: str) -> None:
    timeout_s = 10.0

    timed = execute(local_server, language, PRINT_10_MB[language], timeout=timeout_s)

    body = timed.body
    assert body["truncated"]["stdout"] is True
    assert 0 < len(body["stdout"].encode()) <= OUTPUT_CAP_BYTES
    assert set(body["stdout"]) == {"x"}
    assert body["verdict"] != "time_limit_exceeded"
    assert body["exit_code"] == 0
    assert timed.elapsed_s < timeout_s  # answered well before the program's own time limit


@pytest.mark.parametrize("language", LANGUAGES)
def test_test_cases_are_judged_per_case_and_compiled_once(local_server: RunningServer, language: str) -> None:
    # Given three cases, the second with a wrong expected output
    cases = [
        {"stdin": "1\n", "expected_output": "2"},
        {"stdin": "2\n", "expected_output": "5"},
        {"stdin": "3\n", "expected_output": "6\n\n"},
    ]

    # When they run together
    body = execute(local_server, language, DOUBLE[language], test_cases=cases).body

    # Then each case has its own verdict, and the top level reports the first failure
    results = body["test_results"]
    assert [result["verdict"] for result in results] == ["accepted", "wrong_answer", "accepted"]
    assert [result["stdout"] for result in results] == ["2\n", "4\n", "6\n"]
    assert (body["status"], body["verdict"]) == ("failed", "wrong_answer")
    if language in COMPILED:
        # and every case ran the very same binary: one compilation
        identities = {result["stderr"] for result in results}
        assert len(identities) == 1, identities
        assert identities != {""}
        assert identities != {"no-class-file"}


# --- request options ----------------------------------------------------------------------------------------

ALIASES = {"py": "python", "js": "javascript", "node": "javascript", "c++": "cpp"}


@pytest.mark.parametrize(("alias", "language"), ALIASES.items(), ids=ALIASES.keys())
def test_aliases(local_server: RunningServer, alias: str, language: str) -> None:
    body = execute(local_server, alias, HELLO[language]).body

    assert (body["language"], body["stdout"]) == (language, "Hello, World!\n")


def test_text_encoding_takes_plain_code_and_stdin(local_server: RunningServer) -> None:
    body = execute(local_server, "python", "print(input()[::-1])", stdin="olleh\n").body

    assert body["stdout"] == "hello\n"


def test_java_accepts_any_public_class_name(local_server: RunningServer) -> None:
    code = 'public class Solution { public static void main(String[] a) { System.out.println("ok"); } }'

    body = execute(local_server, "java", code).body

    assert (body["verdict"], body["stdout"]) == ("accepted", "ok\n")


# --- the other endpoints ------------------------------------------------------------------------------------


def test_health(local_server: RunningServer) -> None:
    response = http_call(local_server.url, "GET", "/health")

    assert (response.status, response.json()) == (200, {"status": "healthy", "backend": "local"})


def test_languages_report_their_real_versions(local_server: RunningServer) -> None:
    response = http_call(local_server.url, "GET", "/languages")

    languages = {language["name"]: language for language in response.json()}
    assert response.status == 200
    assert set(LANGUAGES) <= set(languages)
    assert all(languages[name]["version"] for name in LANGUAGES)


def test_openapi_and_swagger_ui(local_server: RunningServer) -> None:
    document = http_call(local_server.url, "GET", "/openapi.json")
    swagger = http_call(local_server.url, "GET", "/swagger")

    assert document.status == 200
    assert "/execute" in document.json()["paths"]
    assert swagger.status == 200
    assert b"SwaggerUIBundle" in swagger.body
