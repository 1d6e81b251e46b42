"""The OpenAPI document says what the service does: languages from the registry, limits from the settings,
only the statuses it sends, and examples that run. Served by the real handler (fake backend)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.core.languages import load_registry
from functions.settings import get_settings
from tests.conftest import FakeBackend, Invoke

SETTINGS = get_settings()
RETRY_AFTER_STATUSES = {"429", "503"}
# What each operation can answer; an independent statement of the contract, not read from the code.
STATUSES = {
    ("/execute", "post"): {"200", "400", "413", "415", "429", "502", "503", "504"},
    ("/health", "get"): {"200", "429", "503"},
    ("/languages", "get"): {"200", "429", "503"},
    ("/executions", "post"): {"202", "400", "413", "415", "422", "429", "502", "503"},
    ("/executions/{execution_id}", "get"): {"200", "404", "429", "502", "503"},
    ("/executions/{execution_id}", "delete"): {"200", "404", "429", "502", "503"},
    ("/judge0/about", "get"): {"200", "429", "503"},
    ("/judge0/config_info", "get"): {"200", "429", "503"},
    ("/judge0/languages", "get"): {"200", "429", "503"},
    ("/judge0/statuses", "get"): {"200", "429", "503"},
    ("/judge0/languages/{language_id}", "get"): {"200", "404", "429", "503"},
    # wait=true adds what /execute answers (501 no toolchain, 504 out of time); Judge0's refusal is a 422
    ("/judge0/submissions", "post"): {"201", "400", "413", "415", "422", "429", "501", "502", "503", "504"},
    ("/judge0/submissions/batch", "post"): {"201", "400", "413", "415", "422", "429", "502", "503"},
    ("/judge0/submissions/batch", "get"): {"200", "400", "429", "502", "503"},
    ("/judge0/submissions/{token}", "get"): {"200", "400", "404", "429", "502", "503"},
    ("/judge0/submissions/{token}", "delete"): {"200", "400", "404", "429", "502", "503"},
}


@pytest.fixture
def document(invoke: Invoke, fake_backend: FakeBackend) -> dict[str, Any]:
    response = invoke("GET", "/openapi.json")
    assert response.status == 200
    body: dict[str, Any] = response.json()
    return body


def request_schema(document: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"]["ExecuteRequest"]["properties"]
    return schema


def names_and_aliases(runners_dir: Path) -> list[str]:
    """Read straight from the language folders, as an oracle independent of the registry code."""
    definitions = [json.loads(path.read_text()) for path in sorted(runners_dir.glob("*/language.json"))]
    return [key for definition in definitions for key in (definition["name"], *definition["aliases"])]


def test_only_the_statuses_the_service_sends_are_documented(document: dict[str, Any]) -> None:
    operations = {
        (path, method): set(operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }

    assert operations == STATUSES
    assert "HTTPValidationError" not in json.dumps(document)
    assert "ValidationError" not in document["components"]["schemas"]


def test_every_429_and_503_declares_retry_after(document: dict[str, Any]) -> None:
    for item in document["paths"].values():
        for operation in item.values():
            for status in RETRY_AFTER_STATUSES:
                header = operation["responses"][status]["headers"]["Retry-After"]
                assert header["required"] is True


def test_language_is_an_enum_of_every_name_and_alias(document: dict[str, Any]) -> None:
    language = request_schema(document)["language"]

    assert language["enum"] == names_and_aliases(SETTINGS.runners_dir)
    assert {"python", "py", "javascript", "node", "cpp", "c++", "java"} <= set(language["enum"])


def test_limits_are_the_configured_ones(document: dict[str, Any]) -> None:
    properties = request_schema(document)

    timeout = properties["timeout"]["anyOf"][0]
    memory = properties["memory_limit_mb"]["anyOf"][0]
    assert (timeout["exclusiveMinimum"], timeout["maximum"]) == (0, SETTINGS.max_timeout_s)
    assert (memory["minimum"], memory["maximum"]) == (
        SETTINGS.min_memory_limit_mb,
        SETTINGS.max_memory_limit_mb,
    )
    assert properties["test_cases"]["anyOf"][0]["maxItems"] == SETTINGS.max_test_cases
    assert properties["args"]["maxItems"] == SETTINGS.max_args
    assert properties["args"]["items"]["maxLength"] == SETTINGS.max_arg_bytes
    assert str(SETTINGS.max_code_bytes) in properties["code"]["description"]


def test_each_language_has_an_example_the_api_accepts(
    document: dict[str, Any], invoke: Invoke, fake_backend: FakeBackend
) -> None:
    examples = document["paths"]["/execute"]["post"]["requestBody"]["content"]["application/json"]["examples"]

    assert set(examples) == {language.name for language in load_registry(SETTINGS.runners_dir).all()}
    for name, example in examples.items():
        response = invoke("POST", "/execute", example["value"])
        assert response.status == 200, (name, response.body)
        assert fake_backend.tasks[-1].language.name == name


def test_swagger_ui_shows_the_same_document(invoke: Invoke, fake_backend: FakeBackend) -> None:
    page = invoke("GET", "/swagger").body.decode()

    assert "HTTPValidationError" not in page
    assert '"python3"' in page
    assert "Retry-After" in page
