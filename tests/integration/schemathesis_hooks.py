"""A check schemathesis loads beside its own (`hooks` in schemathesis.toml).

A schema-valid request may be refused only for a reason the API document states: what JSON Schema cannot
express is written in the field descriptions (functions/api/openapi.py), and these are those sentences'
refusals. schemathesis.toml lets positive data on POST /execute come back 400 or 413; this check then
insists that each such refusal is one of these, so an undocumented refusal (an unknown language, a limit the
schema does not show, a validation error) still fails the run.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

# A fragment of each refusal message -> the documented rule it enforces.
DOCUMENTED_REFUSALS = {
    "is not valid base64": "code, stdin and expected_output are base64 unless encoding is text",
    "code must be UTF-8 text": "code is UTF-8 text once decoded",
    "is not valid Unicode": "text is valid Unicode (no unpaired surrogate)",
    "code is empty": "code is not blank",
    "bytes; the limit is": "sizes are counted after decoding (code, the body)",
    "over all test cases": "stdin and expected outputs are counted together over every test case",
    "send stdin inside each test case": "stdin is not allowed beside test_cases",
    "an argument is longer than": "an argument is at most max_arg_bytes in UTF-8",
}
REFUSAL_STATUSES = frozenset({HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE})


@schemathesis.check
def refused_only_for_documented_reasons(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """A 400/413 to schema-valid data names one of the documented refusals."""
    del ctx
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code not in REFUSAL_STATUSES:
        return None
    message = str(response.json().get("message", ""))
    if not any(fragment in message for fragment in DOCUMENTED_REFUSALS):
        raise AssertionError(
            f"a schema-valid request was refused for a reason the API document does not state: {message}"
        )
    return None
