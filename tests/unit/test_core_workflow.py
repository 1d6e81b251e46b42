"""The asynchronous path's pure rules: poll waits, run ids, error names, fitting a response into a state."""

from __future__ import annotations

import re

import pytest

from functions.core.errors import (
    INTERNAL_ERROR_CODE,
    BackendUnavailableError,
    CapacityExhaustedError,
    ExecutionError,
    InvalidRequestError,
    error_code_for_name,
    error_name,
)
from functions.core.fitting import fit_response, json_size
from functions.core.models import TruncationFlags
from functions.core.runs import run_id_for
from functions.core.workflow import (
    MAX_STATE_BYTES,
    RETRY_RULES,
    PollSchedule,
    execution_timeout_s,
    max_execution_s,
    retry_rule_for,
)
from tests.unit.factories import POLICY, response


@pytest.mark.parametrize(
    ("initial_s", "max_s", "expected"),
    [
        pytest.param(1, 5, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5], id="default-1s-to-5s"),
        pytest.param(0, 1, [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], id="tests-0s-to-1s"),
        pytest.param(3, 3, [3] * 15, id="constant"),
    ],
)
def test_poll_waits_grow_by_a_second_every_third_poll_up_to_the_cap(
    initial_s: int, max_s: int, expected: list[int]
) -> None:
    schedule = PollSchedule(initial_s=initial_s, max_s=max_s)
    assert [schedule.wait_s(polls) for polls in range(15)] == expected


def test_a_two_second_run_is_seen_done_about_three_seconds_after_submit() -> None:
    schedule = PollSchedule(initial_s=1, max_s=5)
    poll_times_s = [sum(schedule.wait_s(polls) for polls in range(count)) for count in range(1, 5)]
    assert poll_times_s == [1, 2, 3, 5]


def test_a_ten_minute_run_costs_a_few_hundred_transitions() -> None:
    # Given the default schedule and a run of 600 s
    schedule, elapsed_s, polls = PollSchedule(initial_s=1, max_s=5), 0, 0
    while elapsed_s < 600:
        elapsed_s += schedule.wait_s(polls)
        polls += 1
    # Then Submit + (Wait, Poll, Choice) per poll + Succeed stays far below the 25,000-event history limit
    transitions = 1 + 3 * polls + 1
    assert polls == 126
    assert transitions == 380  # the figure docs/async.md states


@pytest.mark.parametrize(
    "name",
    ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"],
    ids=["service-id", "another-service-id"],
)
def test_ids_this_service_makes_are_their_own_run_ids(name: str) -> None:
    assert run_id_for(name) == name


@pytest.mark.parametrize(
    "name",
    ["my-workflow-run-1", "My_Workflow_Run_1", "x" * 80, "0123456789ABCDEF0123456789ABCDEF", "a b"],
    ids=["dashed", "underscored", "longest", "uppercase-hex", "spaced"],
)
def test_other_execution_names_get_a_short_lowercase_digest(name: str) -> None:
    run_id = run_id_for(name)
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert run_id == run_id_for(name)  # stable: Cleanup finds what Submit started


def test_names_that_differ_only_in_case_or_punctuation_get_different_runs() -> None:
    names = ["my-run", "My-Run", "my_run", "my.run"]
    assert len({run_id_for(name) for name in names}) == len(names)


def _all_error_classes(cls: type[ExecutionError]) -> list[type[ExecutionError]]:
    return [cls, *(found for sub in cls.__subclasses__() for found in _all_error_classes(sub))]


@pytest.mark.parametrize("error", _all_error_classes(ExecutionError), ids=lambda cls: cls.__name__)
def test_every_error_code_has_a_workflow_name_that_maps_back(error: type[ExecutionError]) -> None:
    name = error_name(error.error_code)
    assert re.fullmatch(r"[A-Z][A-Za-z]+", name)
    assert error_code_for_name(name) == error.error_code


def test_platform_errors_are_not_ours() -> None:
    assert error_name(INTERNAL_ERROR_CODE) == "InternalError"
    for name in ("States.Timeout", "States.TaskFailed", "Lambda.Unknown", "KeyError"):
        assert error_code_for_name(name) is None


def test_only_capacity_and_backend_failures_are_retried_with_growing_waits() -> None:
    assert retry_rule_for(error_name(InvalidRequestError.error_code)) is None
    capacity = retry_rule_for(error_name(CapacityExhaustedError.error_code))
    backend = retry_rule_for(error_name(BackendUnavailableError.error_code))
    assert capacity is not None
    assert backend is not None
    assert [backend.delay_s(attempt) for attempt in (1, 2)] == [1.0, 2.0]
    assert capacity.delay_s(3) > capacity.delay_s(1)
    assert len(RETRY_RULES) == 2


def test_the_execution_timeout_lies_above_the_longest_run() -> None:
    assert execution_timeout_s(POLICY) > max_execution_s(POLICY) > POLICY.total_budget_s


# --- fitting a response into a Step Functions state -----------------------------------------------------


def test_a_response_that_fits_is_returned_unchanged() -> None:
    small = response("hello\n")
    assert fit_response(small, MAX_STATE_BYTES) is small


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        pytest.param("o" * 65536, 40_000, id="ascii"),
        pytest.param("é漢🎉" * 20_000, 40_000, id="multibyte"),
        pytest.param('\x01\x02"\\' * 16_000, 40_000, id="escaped-six-times"),
    ],
)
def test_outputs_are_cut_to_fit_with_their_flags_set(text: str, limit: int) -> None:
    # Given a response of ten cases whose outputs far exceed the limit
    big = response(text, text, cases=[(text, text)] * 10)
    assert json_size(big) > limit
    # When it is fitted
    fitted = fit_response(big, limit)
    # Then it fits, every cut stream says so, and each kept text is a prefix of the original
    assert json_size(fitted) <= limit
    assert fitted.truncated == TruncationFlags(stdout=True, stderr=True)
    assert fitted.test_results is not None
    for case in fitted.test_results:
        assert case.truncated == TruncationFlags(stdout=True, stderr=True)
        assert text.startswith(case.stdout)
    assert fitted.verdict is big.verdict


def test_short_streams_keep_everything_while_long_ones_share_the_room() -> None:
    # Given one long stream among short ones
    big = response("short", "x" * 300_000, cases=[("a", "b")] * 3)
    # When it is fitted into the state limit
    fitted = fit_response(big, MAX_STATE_BYTES)
    # Then only the long one was cut, and it kept most of the room
    assert fitted.stdout == "short"
    assert fitted.truncated == TruncationFlags(stdout=False, stderr=True)
    assert len(fitted.stderr) > MAX_STATE_BYTES - 4096
    assert fitted.test_results == big.test_results
