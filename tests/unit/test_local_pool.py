"""The slot pool never hangs: a full pool answers CapacityExhaustedError with a retry hint."""

from __future__ import annotations

import threading

import pytest

from functions.backends.local.pool import SlotPool
from functions.core.errors import CapacityExhaustedError


def test_full_pool_raises_with_retry_after() -> None:
    # Given a pool with one slot, held
    pool = SlotPool(size=1, queue_wait_s=0.0)
    # When another caller asks / Then it is refused at once with a hint
    with pool.slot(), pytest.raises(CapacityExhaustedError) as caught, pool.slot():
        pass
    assert caught.value.retry_after_s is not None
    assert caught.value.retry_after_s >= 1


def test_slot_is_released_after_an_exception() -> None:
    pool = SlotPool(size=1, queue_wait_s=0.0)
    with pytest.raises(RuntimeError), pool.slot():
        raise RuntimeError("boom")
    with pool.slot():  # the slot came back
        pass


def test_waiter_gets_the_slot_when_it_is_released() -> None:
    # Given a full pool, and a second caller allowed to queue for 30 s
    pool = SlotPool(size=1, queue_wait_s=30.0)
    waiting, got_it = threading.Event(), threading.Event()

    def waiter() -> None:
        waiting.set()
        with pool.slot():
            got_it.set()

    with pool.slot():
        thread = threading.Thread(target=waiter)
        thread.start()
        waiting.wait()
        # Then, while the slot is held, the waiter is kept waiting
        assert not got_it.wait(timeout=0.2)
    # When the holder lets go, the waiter gets the slot
    assert got_it.wait(timeout=10)
    thread.join()


@pytest.mark.parametrize(("size", "holders"), [(2, 2), (3, 3)], ids=["two", "three"])
def test_exactly_size_slots(size: int, holders: int) -> None:
    pool = SlotPool(size=size, queue_wait_s=0.0)
    contexts = [pool.slot() for _ in range(holders)]
    for context in contexts:
        context.__enter__()
    with pytest.raises(CapacityExhaustedError), pool.slot():
        pass
    for context in contexts:
        context.__exit__(None, None, None)


def test_zero_slots_rejected() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        SlotPool(size=0, queue_wait_s=1.0)
