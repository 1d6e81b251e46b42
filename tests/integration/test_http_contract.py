"""The per-language contract through the whole embedded path: real HTTP -> local server -> Lambda handler ->
core -> local sandbox backend -> runner program -> the real toolchain.

`test_contract` runs the shared table of tests/conformance.py, which the Kubernetes suite runs too;
the tests after it are this backend's own. Programs are sent with `encoding: text` for readability; the
README's base64 example has its own test.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

import pytest

from functions.core.languages import LanguageSpec
from tests.conformance import BY_NAME, TLE_TIMEOUT_S, ContractCase, conformance_cases, program, registry
from tests.conftest import RunningServer
from tests.http_support import ApiResponse, http_call

pytestmark = [pytest.mark.sandbox]

TIMEOUT_SLACK_S = 2.0  # the bound: an infinite loop is answered within timeout + 2 s


@dataclass(frozen=True)
class Timed:
    response: ApiResponse
    elapsed_s: float

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.response.json()
        return body


def post_execute(server: RunningServer, request: dict[str, Any]) -> Timed:
    started_s = time.monotonic()
    response = http_call(server.url, "POST", "/execute", request)
    elapsed_s = time.monotonic() - started_s
    assert response.status == 200, response.body[:500]
    return Timed(response, elapsed_s)


def execute(server: RunningServer, language: str, code: str, **fields: Any) -> Timed:
    return post_execute(server, {"language": language, "code": code, "encoding": "text", **fields})


# --- the basic contract ------------------------------------------------------------------------------------


def test_readme_example_returns_hello_world_with_the_new_fields(local_server: RunningServer) -> None:
    # Given the README's curl example: base64 of print("Hello, World!")
    code = base64.b64encode(b'print("Hello, World!")').decode()
    assert code == "cHJpbnQoIkhlbGxvLCBXb3JsZCEiKQ=="

    # When it is posted without an encoding
    response = http_call(local_server.url, "POST", "/execute", {"language": "python", "code": code})

    # Then the basic fields are as documented, and the richer fields are there
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


@pytest.mark.parametrize("case", conformance_cases(), ids=lambda case: case.id)
def test_contract(local_server: RunningServer, case: ContractCase) -> None:
    # Given one program of the shared contract table (the Kubernetes suite runs the very same table)
    # When it is posted to the local server
    timed = post_execute(local_server, case.request())

    # Then the response holds what the contract says
    case.check(timed.body)
    if case.behaviour is BY_NAME["infinite_loop"]:
        # and, on this backend, promptly
        assert timed.elapsed_s < TLE_TIMEOUT_S + TIMEOUT_SLACK_S


# --- request options ----------------------------------------------------------------------------------------

ALIASES = [(alias, language) for language in registry().all() for alias in language.aliases]


@pytest.mark.parametrize(("alias", "language"), ALIASES, ids=[alias for alias, _ in ALIASES])
def test_aliases(local_server: RunningServer, alias: str, language: LanguageSpec) -> None:
    body = execute(local_server, alias.upper(), program(language, "hello")).body

    assert (body["language"], body["stdout"]) == (language.name, "Hello, World!\n")


def test_text_encoding_takes_plain_code_and_stdin(local_server: RunningServer) -> None:
    body = execute(local_server, "python", "print(input()[::-1])", stdin="olleh\n").body

    assert body["stdout"] == "hello\n"


# --- the other endpoints ------------------------------------------------------------------------------------


def test_health(local_server: RunningServer) -> None:
    response = http_call(local_server.url, "GET", "/health")

    assert (response.status, response.json()) == (200, {"status": "healthy", "backend": "local"})


def test_languages_report_their_real_versions(local_server: RunningServer) -> None:
    response = http_call(local_server.url, "GET", "/languages")

    languages = {language["name"]: language for language in response.json()}
    assert response.status == 200
    assert set(languages) == {language.name for language in registry().all()}
    for language in registry().all():
        # the toolchain's own version, as its version command prints it, not the folder's pinned major
        assert languages[language.name]["available"] is True
        assert languages[language.name]["version"].startswith(language.version)
        assert languages[language.name]["version"] != language.version


def test_the_documents_examples_run_as_they_are(local_server: RunningServer) -> None:
    # Given the request examples of the API document, one per language
    document = http_call(local_server.url, "GET", "/openapi.json").json()
    examples = document["paths"]["/execute"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {language.name for language in registry().all()}

    # When a client sends each one as it is
    for name, example in examples.items():
        body = post_execute(local_server, example["value"]).body

        # Then it runs: each language's hello world
        assert (body["verdict"], body["stdout"], body["language"]) == ("accepted", "Hello, World!\n", name)


def test_openapi_and_swagger_ui(local_server: RunningServer) -> None:
    document = http_call(local_server.url, "GET", "/openapi.json")
    swagger = http_call(local_server.url, "GET", "/swagger")

    assert document.status == 200
    assert "/execute" in document.json()["paths"]
    assert swagger.status == 200
    assert b"SwaggerUIBundle" in swagger.body
