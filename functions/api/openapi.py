"""The API document, made to say what the service does.

powertools generates the document from the routes and models; `ApiResolver` finishes it with what only the
running service knows, so a client (or a fuzzer) that trusts the document is not refused for reasons it
could not read:
- `language` is an enum of every name and alias in the language registry (runners/*/language.json), and
  /judge0's `language_id` an enum of every Judge0 id the registry's folders bring (`judge0_document`);
- the limits are the policy's (timeout ceiling, memory range, how many args and test cases);
- one example per language, its own test program, that runs as is;
- only statuses the service sends: powertools' 422 `HTTPValidationError` goes (invalid input is a 400 from
  the error table), and every 429/503 declares its Retry-After header.
What JSON Schema cannot say (a base64 or UTF-8 problem once decoded, sizes counted after decoding, blank
code, stdin beside test_cases) is written in the field descriptions and answered 400 or 413.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

from functions.api.errors import RETRY_AFTER_STATUSES
from functions.api.judge0_document import describe_judge0
from functions.core.languages import LanguageRegistry
from functions.core.spec import LimitPolicy

Document = dict[str, Any]
VALIDATION_ERROR_STATUS = "422"
# powertools' schemas for answers the service never sends (its 422 and response-validation errors).
UNSENT_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
REQUEST_SCHEMA = "ExecuteRequest"
TEST_CASE_SCHEMA = "TestCaseRequest"
EXECUTE_PATH = "/execute"
# base64 turns every 3 bytes into 4 characters.
BASE64_CHARS_PER_3_BYTES = 4


class ApiResolver(APIGatewayRestResolver):
    """powertools' REST resolver whose OpenAPI document (and Swagger UI) goes through `finish_document`."""

    def __init__(self, *, finish_document: Callable[[Document], Document], **options: Any) -> None:
        super().__init__(json_body_deserializer=read_json_body, **options)
        self._finish_document = finish_document

    def get_openapi_schema(self, **options: Any) -> OpenAPI:
        generated = super().get_openapi_schema(**options)
        document = generated.model_dump(by_alias=True, exclude_none=True, mode="json")
        return OpenAPI.model_validate(self._finish_document(document))


def read_json_body(body: str) -> Any:
    """json.loads, whose other refusal of a body (an integer of more than Python's 4300 digits) is bad JSON too."""
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError("a number has too many digits", body, 0) from exc


@dataclass(frozen=True, slots=True)
class ServiceDescription:
    """What the document states about the running service."""

    registry: LanguageRegistry
    policy: LimitPolicy
    runners_dir: Path

    def finish(self, generated: Document) -> Document:
        document = copy.deepcopy(generated)
        for operation in _operations(document):
            _drop_validation_status(operation)
            _declare_retry_after(operation)
        schemas = document.get("components", {}).get("schemas", {})
        for name in UNSENT_SCHEMAS:
            schemas.pop(name, None)
        if REQUEST_SCHEMA in schemas:
            self._describe_request(schemas[REQUEST_SCHEMA]["properties"])
        describe_judge0(document, self.registry, self.policy)
        if TEST_CASE_SCHEMA in schemas:
            case = schemas[TEST_CASE_SCHEMA]["properties"]
            case["stdin"]["description"] = "Standard input of this case, encoded like code"
            case["expected_output"]["description"] = (
                "What stdout must be for the verdict accepted, encoded like code; absent or null: not compared"
            )
        execute = document.get("paths", {}).get(EXECUTE_PATH, {}).get("post")
        if execute is not None:
            execute["requestBody"]["content"]["application/json"]["examples"] = self.examples()
        return document

    def language_names(self) -> list[str]:
        return [key for language in self.registry.all() for key in (language.name, *language.aliases)]

    def examples(self) -> dict[str, Any]:
        """One runnable request per language: its test program, sent as text."""
        return {
            language.name: {
                "summary": f"{language.display_name}: its hello world",
                "value": {
                    "language": language.name,
                    "encoding": "text",
                    "code": language.test_program_path(self.runners_dir).read_text(encoding="utf-8"),
                },
            }
            for language in self.registry.all()
        }

    def _describe_request(self, properties: dict[str, Any]) -> None:
        policy = self.policy
        properties["language"] = {
            "type": "string",
            "enum": self.language_names(),
            "title": "Language",
            "description": "A language name or alias (matched case-insensitively); GET /languages lists "
            "them with their toolchain versions.",
        }
        code_chars = max(policy.max_code_bytes, _base64_chars(policy.max_code_bytes))
        properties["code"].update(
            minLength=1,
            maxLength=code_chars,
            description="Source code: base64 of UTF-8 text (encoding base64, the default) or the text itself "
            f"(encoding text). Refused with 400 if it does not decode, is not UTF-8 or is blank; with 413 if "
            f"it is more than {policy.max_code_bytes} bytes once decoded.",
        )
        properties["stdin"]["description"] = (
            "Standard input, encoded like code. Not allowed beside test_cases (each case has its own). "
            f"At most {policy.max_stdin_bytes} bytes once decoded, counted over stdin and every test "
            "case's stdin and expected_output (413 beyond)."
        )
        _constrain(
            properties["timeout"],
            maximum=policy.max_timeout_s,
            description=f"Wall-clock limit of the program in seconds (default {policy.default_timeout_s:g}).",
        )
        _constrain(
            properties["memory_limit_mb"],
            minimum=policy.min_memory_limit_mb,
            maximum=policy.max_memory_limit_mb,
            description=f"Memory limit of the program in MiB (default {policy.default_memory_limit_mb}).",
        )
        properties["args"].update(maxItems=policy.max_args)
        properties["args"]["items"].update(
            maxLength=policy.max_arg_bytes,
            pattern="^[^\\u0000]*$",
            description=f"No NUL character; at most {policy.max_arg_bytes} bytes in UTF-8.",
        )
        _constrain(properties["test_cases"], maxItems=policy.max_test_cases)


def _base64_chars(size_bytes: int) -> int:
    return -(-size_bytes // 3) * BASE64_CHARS_PER_3_BYTES


def _constrain(property_schema: dict[str, Any], *, description: str | None = None, **keywords: Any) -> None:
    """Add keywords to a property; an optional property's constraints go on its non-null branch."""
    branches = property_schema.get("anyOf")
    target = (
        next((b for b in branches if b.get("type") != "null"), property_schema)
        if branches
        else property_schema
    )
    target.update(keywords)
    if description is not None:
        property_schema["description"] = description


def _operations(document: Document) -> list[dict[str, Any]]:
    return [operation for path in document.get("paths", {}).values() for operation in path.values()]


def _drop_validation_status(operation: dict[str, Any]) -> None:
    """powertools' own 422 (its HTTPValidationError), never a 422 a route declares with our error shape."""
    responses = operation.get("responses", {})
    generated = json.dumps(responses.get(VALIDATION_ERROR_STATUS, {}))
    if any(name in generated for name in UNSENT_SCHEMAS):
        responses.pop(VALIDATION_ERROR_STATUS, None)


def _declare_retry_after(operation: dict[str, Any]) -> None:
    for status, response in operation.get("responses", {}).items():
        if int(status) in RETRY_AFTER_STATUSES:
            response.setdefault("headers", {})["Retry-After"] = {
                "description": "Seconds to wait before retrying",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
