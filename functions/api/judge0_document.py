"""What the API document states about /judge0 beyond what the models say (ServiceDescription calls this).

The models accept what Judge0 accepts, so that a value this service cannot honour gets a 422 naming the
reason; the document states the values that are accepted, so that a client (or a fuzzer) that trusts it
is refused only for what the field descriptions say (base64 that does not decode, a time limit above the
ceiling, more arguments than allowed).
"""

from __future__ import annotations

import json
from typing import Any

from functions.core.judge0.submissions import KB_PER_MB, UNSUPPORTED
from functions.core.languages import LanguageRegistry
from functions.core.spec import LimitPolicy

SUBMISSION_SCHEMA = "SubmissionRequest"
LANGUAGE_PATH = "/judge0/languages/{language_id}"


def describe_judge0(document: dict[str, Any], registry: LanguageRegistry, policy: LimitPolicy) -> None:
    """Narrow the /judge0 schemas in `document` (in place) to what this service accepts."""
    ids = [judge0_id for judge0_id, _language in registry.judge0_ids()]
    schema = document.get("components", {}).get("schemas", {}).get(SUBMISSION_SCHEMA)
    if schema is not None:
        _describe_submission(schema["properties"], ids, policy)
    operation = document.get("paths", {}).get(LANGUAGE_PATH, {}).get("get")
    if operation is not None:
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "language_id":
                parameter["schema"]["enum"] = [str(judge0_id) for judge0_id in ids]
                parameter["description"] = "An id of GET /judge0/languages (any other: 404)"


def _describe_submission(properties: dict[str, Any], ids: list[int], policy: LimitPolicy) -> None:
    properties["language_id"]["enum"] = ids
    for name, (accepted, reason) in UNSUPPORTED.items():
        values = [{"enum": list(accepted)}] if accepted else []
        properties[name] = {
            "anyOf": [*values, {"type": "null"}],
            "title": properties[name].get("title", name),
            "description": f"{reason[:1].upper()}{reason[1:]}. Accepted: "
            + " or ".join(json.dumps(value) for value in (None, *accepted)),
        }
    memory = properties["memory_limit"]
    memory["anyOf"][0].update(
        exclusiveMinimum=(policy.min_memory_limit_mb - 1) * KB_PER_MB,
        maximum=policy.max_memory_limit_mb * KB_PER_MB,
    )
    memory["description"] = (
        f"KB, rounded up to whole MiB ({policy.min_memory_limit_mb} to {policy.max_memory_limit_mb}): every process "
        f"of the program together (default {policy.default_memory_limit_mb * KB_PER_MB})"
    )
    for name in ("cpu_time_limit", "wall_time_limit"):
        properties[name]["description"] = (
            "Seconds. This service bounds wall-clock time: the smaller of cpu_time_limit and wall_time_limit "
            f"applies (default {policy.default_timeout_s:g}); above {policy.max_timeout_s:g} refused (422) "
            "with wait=true, allowed up to the asynchronous ceiling with wait=false"
        )
    arguments = properties["command_line_arguments"]
    arguments["anyOf"][0]["pattern"] = "^[^\\u0000]*$"
    arguments["description"] = (
        f"Split into words like a shell does (quotes group), never expanded; at most {policy.max_args} words "
        f"of at most {policy.max_arg_bytes} bytes each (422 beyond), no NUL"
    )
