"""The local execution store (SQLite under the data dir) and the service in front of it, with no run."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from functions.core.errors import (
    CapacityExhaustedError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from functions.core.executions import (
    CANCELLED_ERROR,
    AsyncExecutionService,
    ExecutionFailure,
    ExecutionState,
    execution_id_for,
    execution_input,
)
from functions.core.languages import load_registry
from functions.core.models import ExecuteRequest
from functions.settings import DEFAULT_RUNNERS_DIR, Settings
from functions.sqlite_executions.owners import OwnerLease
from functions.sqlite_executions.store import DATABASE_NAME, SqliteExecutionStore
from functions.wiring import async_policy
from tests.unit.factories import response

ID_A = "a" * 32
ID_B = "b" * 32
INPUT = execution_input(ExecuteRequest(language="python", code="cHJpbnQoMSk="))
OTHER_INPUT = execution_input(ExecuteRequest(language="python", code="cHJpbnQoMik="))


@pytest.fixture
def store(tmp_path: Path) -> SqliteExecutionStore:
    return SqliteExecutionStore(tmp_path / "executions", max_unfinished=2, retry_after_s=5)


@pytest.fixture
def service(store: SqliteExecutionStore) -> AsyncExecutionService:
    return AsyncExecutionService(
        store=store, registry=load_registry(DEFAULT_RUNNERS_DIR), policy=async_policy(Settings())
    )


def text(code: str, **fields: object) -> ExecuteRequest:
    return ExecuteRequest.model_validate({"language": "python", "code": code, "encoding": "text", **fields})


# --- the store ------------------------------------------------------------------------------------------


def test_a_started_execution_is_running_and_readable_by_another_store_on_the_same_file(
    store: SqliteExecutionStore, tmp_path: Path
) -> None:
    started = store.start(ID_A, INPUT)
    # Another process (a worker, a restarted server) opens the same file
    again = SqliteExecutionStore(tmp_path / "executions", max_unfinished=2, retry_after_s=5).describe(ID_A)
    assert started.state is ExecutionState.RUNNING
    assert again == started
    assert again.finished_at is None


def test_the_file_is_closed_to_other_users(store: SqliteExecutionStore) -> None:
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert store.path.name == DATABASE_NAME


def test_the_same_id_and_input_describe_the_same_execution(store: SqliteExecutionStore) -> None:
    first = store.start(ID_A, INPUT)
    assert store.start(ID_A, INPUT) == first
    assert store.count() == 1


def test_the_same_id_with_another_input_is_refused(store: SqliteExecutionStore) -> None:
    store.start(ID_A, INPUT)
    with pytest.raises(IdempotencyKeyReusedError):
        store.start(ID_A, OTHER_INPUT)


def test_beyond_the_unfinished_limit_a_start_is_refused_with_a_retry_hint(
    store: SqliteExecutionStore,
) -> None:
    store.start(ID_A, INPUT)
    store.start(ID_B, INPUT)
    with pytest.raises(CapacityExhaustedError) as caught:
        store.start("c" * 32, INPUT)
    assert caught.value.retry_after_s == 5
    # A known id is still answered: a retry of an accepted POST is not a new execution
    assert store.start(ID_A, INPUT).execution_id == ID_A


def test_a_cancel_wins_over_a_late_result(store: SqliteExecutionStore) -> None:
    store.start(ID_A, INPUT)
    (claimed,) = store.claim("owner1", owner_is_dead=lambda _owner: False)
    cancelled = store.stop(ID_A)
    finished = store.finish(ID_A, "owner1", ExecutionState.SUCCEEDED, result=response("late"))
    assert cancelled.state is ExecutionState.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.error == CANCELLED_ERROR
    assert finished is False
    assert store.describe(ID_A).state is ExecutionState.CANCELLED
    assert claimed.input_json == INPUT


def test_a_finished_execution_keeps_its_result_and_forgets_its_request(store: SqliteExecutionStore) -> None:
    store.start(ID_A, INPUT)
    store.claim("owner1", owner_is_dead=lambda _owner: False)
    assert store.finish(ID_A, "owner1", ExecutionState.SUCCEEDED, result=response("out"))
    described = store.describe(ID_A)
    assert described.result == response("out")
    assert described.finished_at is not None
    # The code is gone, the idempotency check still works
    assert store.claim("owner2", owner_is_dead=lambda _owner: True) == []
    with pytest.raises(IdempotencyKeyReusedError):
        store.start(ID_A, OTHER_INPUT)
    assert store.start(ID_A, INPUT).state is ExecutionState.SUCCEEDED


def test_a_stop_of_a_finished_execution_changes_nothing(store: SqliteExecutionStore) -> None:
    store.start(ID_A, INPUT)
    store.claim("o", owner_is_dead=lambda _owner: False)
    failure = ExecutionFailure(error="backend_unavailable", message="x")
    store.finish(ID_A, "o", ExecutionState.FAILED, error=failure)
    assert store.stop(ID_A).error == failure


def test_a_claim_takes_the_oldest_first_and_no_more_than_its_limit(tmp_path: Path) -> None:
    # Given three waiting executions, started in this order
    store = SqliteExecutionStore(tmp_path / "executions", max_unfinished=10, retry_after_s=5)
    for execution_id in (ID_B, ID_A, "c" * 32):
        store.start(execution_id, INPUT)
    # When a dispatcher with room for two claims, then one with room for more
    first = store.claim("one", owner_is_dead=lambda _owner: False, limit=2)
    rest = store.claim("two", owner_is_dead=lambda _owner: False, limit=5)
    # Then the two oldest went to the first, the last one waited for the second
    assert [claimed.execution_id for claimed in first] == [ID_B, ID_A]
    assert [claimed.execution_id for claimed in rest] == ["c" * 32]


def test_the_start_of_an_execution_is_when_it_was_first_claimed(store: SqliteExecutionStore) -> None:
    store.start(ID_A, INPUT)
    (first,) = store.claim("one", owner_is_dead=lambda _owner: False)
    (taken_over,) = store.claim("two", owner_is_dead=lambda _owner: True)
    assert first.started_at >= store.describe(ID_A).created_at.timestamp()
    assert taken_over.started_at == first.started_at  # a takeover does not restart its clock


def test_a_file_of_the_first_schema_gains_the_new_columns(tmp_path: Path) -> None:
    # Given a store file written before executions could wait (no started_at column), holding one
    directory = tmp_path / "executions"
    directory.mkdir(mode=0o700)
    with sqlite3.connect(directory / DATABASE_NAME) as db:
        db.execute(
            "CREATE TABLE executions (execution_id TEXT PRIMARY KEY, input_sha256 TEXT NOT NULL,"
            " input_json TEXT, state TEXT NOT NULL, created_at REAL NOT NULL, finished_at REAL, owner TEXT,"
            " attempts INTEGER NOT NULL DEFAULT 0, run_state TEXT, result_json TEXT, error TEXT,"
            " error_message TEXT)"
        )
        db.execute(
            "INSERT INTO executions (execution_id, input_sha256, input_json, state, created_at)"
            " VALUES (?, 'x', ?, 'RUNNING', 1.0)",
            (ID_A, INPUT),
        )
    # When this version opens it / Then its execution is claimed like any other
    store = SqliteExecutionStore(directory, max_unfinished=2, retry_after_s=5)
    (claimed,) = store.claim("one", owner_is_dead=lambda _owner: False)
    assert claimed.execution_id == ID_A
    assert claimed.started_at > 1.0


def test_only_executions_of_dead_owners_are_taken_over(store: SqliteExecutionStore) -> None:
    store.start(ID_A, INPUT)
    store.start(ID_B, INPUT)
    store.claim("alive", owner_is_dead=lambda _owner: False)
    # A second dispatcher finds nothing while the first lives, everything once it is dead
    assert store.claim("second", owner_is_dead=lambda owner: owner != "alive") == []
    taken = store.claim("second", owner_is_dead=lambda _owner: True)
    assert sorted(claimed.execution_id for claimed in taken) == [ID_A, ID_B]
    assert store.running_owned("second") == {ID_A, ID_B}


def test_an_unknown_id_is_not_found(store: SqliteExecutionStore) -> None:
    with pytest.raises(NotFoundError):
        store.describe(ID_A)
    with pytest.raises(NotFoundError):
        store.stop(ID_A)


def test_a_lease_is_alive_until_released(tmp_path: Path) -> None:
    first, second = OwnerLease(tmp_path), OwnerLease(tmp_path)
    assert not second.is_dead(first.owner)
    assert not first.is_dead(first.owner)
    first.release()
    assert second.is_dead(first.owner)
    assert second.is_dead("0" * 32)  # never existed
    second.release()


# --- the service: validation before anything starts ----------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        pytest.param(text("print(1)", timeout=901), InvalidRequestError, id="timeout-above-async-ceiling"),
        pytest.param(text("print(1)", language="cobol"), InvalidRequestError, id="unknown-language"),
        pytest.param(text(""), InvalidRequestError, id="empty-code"),
        pytest.param(
            text("print(1)", stdin="x" * 300_000), PayloadTooLargeError, id="above-state-input-limit"
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    service: AsyncExecutionService,
    store: SqliteExecutionStore,
    request_body: ExecuteRequest,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        service.start(request_body, idempotency_key=None, caller="")
    assert store.count() == 0


def test_a_timeout_above_the_synchronous_ceiling_is_accepted(service: AsyncExecutionService) -> None:
    started = service.start(text("print(1)", timeout=600), idempotency_key=None, caller="")
    assert started.state is ExecutionState.RUNNING


def test_an_idempotency_key_names_one_execution_per_caller(service: AsyncExecutionService) -> None:
    first = service.start(text("print(1)"), idempotency_key="order-42", caller="key-1")
    again = service.start(text("print(1)"), idempotency_key="order-42", caller="key-1")
    other_caller = service.start(text("print(1)"), idempotency_key="order-42", caller="key-2")
    assert first.execution_id == again.execution_id == execution_id_for("order-42", caller="key-1")
    assert other_caller.execution_id != first.execution_id


@pytest.mark.parametrize("execution_id", ["nope", "A" * 32, "a" * 31, "../" + "a" * 29, ""], ids=repr)
def test_what_cannot_be_an_id_is_an_unknown_execution(
    service: AsyncExecutionService, execution_id: str
) -> None:
    with pytest.raises(NotFoundError):
        service.describe(execution_id)
    with pytest.raises(NotFoundError):
        service.cancel(execution_id)
