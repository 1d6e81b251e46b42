"""Make a response fit a size limit by cutting program output, never by failing.

A Step Functions state carries at most 256 KiB, and a run with many test cases can print megabytes. The
outputs are cut to a common length (the longest ones lose most), the head of each is kept as the
sandbox keeps it, and every cut stream's `truncated` flag is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.core.models import ExecuteResponse, TestCaseResult

# Re-measurement rounds before the last resort (empty outputs); escapes can make JSON 6x the text.
_MAX_ROUNDS = 8


def fit_response(response: ExecuteResponse, max_bytes: int) -> ExecuteResponse:
    """`response` itself when its JSON fits in `max_bytes` (UTF-8), else a copy with shorter outputs."""
    size = json_size(response)
    if size <= max_bytes:
        return response
    texts = _texts(response)
    fixed = size - sum(len(text.encode("utf-8")) for text in texts.values())
    room = max_bytes - fixed
    for _ in range(_MAX_ROUNDS):
        cap = _common_cap([len(text.encode("utf-8")) for text in texts.values()], room)
        fitted = _cut(response, cap)
        size = json_size(fitted)
        if size <= max_bytes:
            return fitted
        room -= size - max_bytes  # escaped characters took more room than their bytes
    return _cut(response, 0)


def json_size(response: ExecuteResponse) -> int:
    return len(response.model_dump_json().encode("utf-8"))


def _common_cap(sizes: list[int], room: int) -> int:
    """The largest per-text byte cap whose capped sizes sum to at most `room` (water filling)."""
    if room <= 0:
        return 0
    remaining = room
    ordered = sorted(sizes)
    for index, size in enumerate(ordered):
        share = remaining // (len(ordered) - index)
        if size > share:
            return share
        remaining -= size
    return ordered[-1] if ordered else 0


@dataclass(frozen=True, slots=True)
class _Cut:
    text: str
    truncated: bool


def _cut_text(text: str, cap_bytes: int) -> _Cut:
    data = text.encode("utf-8")
    if len(data) <= cap_bytes:
        return _Cut(text, truncated=False)
    # errors="ignore" drops a character split by the cut rather than inventing a replacement.
    return _Cut(data[:cap_bytes].decode("utf-8", errors="ignore"), truncated=True)


def _cut(response: ExecuteResponse, cap: int) -> ExecuteResponse:
    stdout, stderr = _cut_text(response.stdout, cap), _cut_text(response.stderr, cap)
    results = (
        None if response.test_results is None else [_cut_case(case, cap) for case in response.test_results]
    )
    return response.model_copy(
        update={
            "stdout": stdout.text,
            "stderr": stderr.text,
            "compile_output": _cut_text(response.compile_output, cap).text,
            "truncated": response.truncated.model_copy(
                update={
                    "stdout": response.truncated.stdout or stdout.truncated,
                    "stderr": response.truncated.stderr or stderr.truncated,
                }
            ),
            "test_results": results,
        }
    )


def _cut_case(case: TestCaseResult, cap: int) -> TestCaseResult:
    stdout, stderr = _cut_text(case.stdout, cap), _cut_text(case.stderr, cap)
    return case.model_copy(
        update={
            "stdout": stdout.text,
            "stderr": stderr.text,
            "truncated": case.truncated.model_copy(
                update={
                    "stdout": case.truncated.stdout or stdout.truncated,
                    "stderr": case.truncated.stderr or stderr.truncated,
                }
            ),
        }
    )


def _texts(response: ExecuteResponse) -> dict[str, str]:
    texts = {"stdout": response.stdout, "stderr": response.stderr, "compile_output": response.compile_output}
    for index, case in enumerate(response.test_results or []):
        texts[f"{index}.stdout"] = case.stdout
        texts[f"{index}.stderr"] = case.stderr
    return texts
