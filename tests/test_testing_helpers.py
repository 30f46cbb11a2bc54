"""The shared helpers of pytest_concurrency.testing, tested directly (the kit tests them only through the exercises)."""

from __future__ import annotations

import doctest
import threading

import pytest

import pytest_concurrency.testing as testing
from pytest_concurrency.testing import Background, wait_until_blocked


def test_the_docstring_examples_run():
    assert doctest.testmod(testing).failed == 0


def test_a_stuck_background_thread_fails_with_where_it_is_stuck():
    never = threading.Event()
    job = Background(never.wait, name="stuck", patience=0.2)
    try:
        with pytest.raises(AssertionError) as failure:
            job.outcome("waiting for nothing")
        message = str(failure.value)
        assert "waiting for nothing: thread 'stuck' was still blocked 0.2 s later" in message
        assert "in wait" in message  # the frame it is stuck in, not the helper's own
        assert "_run" not in message
    finally:
        never.set()
    assert job.outcome("after set") is True


def test_a_background_exception_is_raised_by_outcome():
    job = Background(int, "not a number", name="parser")
    with pytest.raises(ValueError):
        job.outcome("parsing")


def test_wait_until_blocked_fails_when_the_thread_returns_instead():
    job = Background(lambda: None, name="quick")
    job.outcome("returning")
    with pytest.raises(AssertionError, match="returned instead of waiting"):
        wait_until_blocked(job, "quick()")


def test_wait_until_blocked_fails_when_the_thread_spins():
    stop = False

    def spin() -> None:
        while not stop:
            pass

    job = Background(spin, name="spinner")
    try:
        with pytest.raises(AssertionError, match="never slept in Condition.wait within 0.2 s"):
            wait_until_blocked(job, "spin()", patience=0.2)
    finally:
        stop = True  # noqa: F841 (read by spin through the closure)
        job.outcome("spinning")


def test_timed_on_the_virtual_clock_and_the_hint_for_a_wrong_timeout():
    from hypothesis import given

    from pytest_concurrency import schedules
    from pytest_concurrency.testing import timed, timeout_hint

    @given(schedules(max_preemptions=0))
    def sleeping(schedule):
        import time

        [outcome] = schedule.run(lambda: timed(time.sleep, 3))
        how, value, took = outcome
        assert (how, value) == ("returned", None) and took == pytest.approx(3.0)  # virtual seconds

    sleeping()
    how, error, _ = timed(int, "three")
    assert how == "raised" and isinstance(error, ValueError)
    assert "milliseconds" in timeout_hint(0.003, 3.0)  # gave up too soon
    assert "after each wakeup" in timeout_hint(6.0, 3.0)  # the timeout restarted
