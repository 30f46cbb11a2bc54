"""Graded tests of exercise 04: a starting gate and a count-down latch."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from hypothesis import Phase, given, settings

from pytest_concurrency import BLOCKS, Operation, load_impl, scenarios, schedules
from pytest_concurrency.testing import THREAD_PATIENCE as PATIENCE

gate = load_impl("gate")

# The timeouts are tested on the virtual clock of schedules(): inside schedule.run,
# time.monotonic() and the timeouts of Event.wait and Condition.wait count virtual
# seconds, which only pass when every thread waits. A timeout of 3 s expires at
# exactly t=3, costs no real time, and does not depend on how busy the machine is.
TIMEOUT = 3.0
# Tests whose outcome does not depend on the interleaving: a few schedules show it,
# and there is no "explain" phase rerunning a failure to no purpose.
timing_settings = settings(
    max_examples=5, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)


def waited(call, *args) -> tuple[object, float]:
    """``call(*args)`` and how long it took (in virtual seconds inside schedule.run)."""
    start = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - start


# -- StartingGate -------------------------------------------------------------


@pytest.mark.points(2)
@timing_settings
@given(schedules())
def test_a_closed_gate_keeps_waiters_out_until_the_timeout(schedule):
    start_line = gate.StartingGate()
    assert start_line.is_open is False, "a new gate must be closed: is_open is False"
    ((result, took),) = schedule.run(lambda: waited(start_line.wait, TIMEOUT))
    assert result is False, f"wait(timeout) on a closed gate must return False, got {result!r}"
    assert took == pytest.approx(TIMEOUT), (
        f"wait({TIMEOUT:g}) on a closed gate returned after {took:g} s (virtual): it must "
        "block until the timeout"
    )


@pytest.mark.points(2)
@timing_settings
@given(schedules())
def test_an_open_gate_lets_everyone_through_at_once(schedule):
    start_line = gate.StartingGate()
    start_line.open()
    assert start_line.is_open is True, "after open(), is_open must be True"
    ((result, took),) = schedule.run(lambda: waited(start_line.wait, TIMEOUT))
    assert result is True, f"wait() on an open gate must return True, got {result!r}"
    assert took == 0, f"wait({TIMEOUT:g}) on an open gate blocked for {took:g} s (virtual)"
    start_line.open()  # opening twice is harmless
    assert start_line.wait(0) is True and start_line.is_open is True


@pytest.mark.points(3)
def test_one_open_releases_every_waiting_thread():
    start_line = gate.StartingGate()
    n = 5
    ready = threading.Barrier(n + 1, timeout=PATIENCE)
    results: list[object] = [None] * n

    def runner(i: int) -> None:
        ready.wait()
        results[i] = start_line.wait(PATIENCE)

    runners = [threading.Thread(target=runner, args=(i,), name=f"runner-{i}") for i in range(n)]
    for thread in runners:
        thread.start()
    ready.wait()
    start_line.open()
    for thread in runners:
        thread.join(PATIENCE)
    assert results == [True] * n, (
        f"one open() must release all {n} waiting threads, each getting True; got {results}"
    )


@pytest.mark.points(3)
@given(schedules())
def test_no_runner_starts_before_the_gun_and_no_wakeup_is_lost(schedule):
    start_line = gate.StartingGate()
    fired: list[bool] = []
    early: list[str] = []

    def runner(name: str):
        def run() -> object:
            result = start_line.wait()  # no timeout: a lost wakeup is reported as a deadlock
            if not fired:
                early.append(name)
            return result

        return run

    def starter() -> None:
        fired.append(True)
        start_line.open()

    results = schedule.run(runner("ann"), runner("bob"), starter)
    assert not early, f"{early} passed the gate before it was opened"
    assert results[:2] == [True, True], f"wait() must return True once open; got {results[:2]}"


# -- CountDownLatch -------------------------------------------------------------


@pytest.mark.points(1)
def test_latch_negative_count_is_a_value_error():
    with pytest.raises(ValueError):
        gate.CountDownLatch(-1)


@pytest.mark.points(1)
def test_a_latch_of_zero_is_open_from_the_start():
    latch = gate.CountDownLatch(0)
    assert latch.wait(0) is True, "CountDownLatch(0) has nothing to wait for: wait(0) is True"
    assert latch.count == 0


@pytest.mark.points(3)
def test_the_latch_opens_exactly_at_zero():
    latch = gate.CountDownLatch(3)
    seen = []
    for _ in range(3):
        seen.append((latch.count, latch.wait(0)))
        latch.count_down()
    seen.append((latch.count, latch.wait(0)))
    assert seen == [(3, False), (2, False), (1, False), (0, True)], (
        "count and wait(0) before each count_down() of a CountDownLatch(3), then after the "
        f"last: expected [(3, False), (2, False), (1, False), (0, True)], got {seen}"
    )


@pytest.mark.points(2)
def test_the_count_never_goes_negative():
    latch = gate.CountDownLatch(1)
    for _ in range(3):
        latch.count_down()
    assert latch.count == 0, (
        f"3 count_down() on a CountDownLatch(1): count must stay 0, got {latch.count}"
    )
    assert latch.wait(0) is True


@pytest.mark.points(1)
@timing_settings
@given(schedules())
def test_latch_wait_times_out_with_false(schedule):
    latch = gate.CountDownLatch(1)
    ((result, took),) = schedule.run(lambda: waited(latch.wait, TIMEOUT))
    assert result is False, f"wait(timeout) on a closed latch must return False, got {result!r}"
    assert took == pytest.approx(TIMEOUT), (
        f"wait({TIMEOUT:g}) on a closed latch returned after {took:g} s (virtual): it must "
        "block until the timeout"
    )


@pytest.mark.points(3)
@settings(max_examples=200)
@given(schedules())
def test_racing_count_downs_open_the_latch_exactly_once_at_zero(schedule):
    latch = gate.CountDownLatch(3)
    done: list[str] = []  # list.append is atomic
    early: list[str] = []

    def worker(name: str):
        def work() -> None:
            done.append(name)
            latch.count_down()

        return work

    def waiter() -> bool:
        opened = latch.wait()  # no timeout: a lost count_down is reported as a deadlock
        if len(done) < 3:
            early.append(f"the latch opened when only {done} had counted down")
        return opened

    results = schedule.run(worker("w0"), worker("w1"), worker("w2"), waiter)
    assert not early, early[0]
    assert results[3] is True, f"wait() must return True once the count is 0, got {results[3]!r}"
    assert latch.count == 0, (
        f"3 threads called count_down() on a CountDownLatch(3), count is {latch.count}: "
        "an update was lost (guard the decrement and the check for zero with a lock)"
    )


# -- linearizability: count_down, count and wait from several threads at once ----------------
# Hypothesis draws small scenarios (2-3 threads of 1-3 calls, a set-up and an after part),
# each runs under a drawn schedule, and every result must be explained by some sequential
# order of the calls: count_down stops at 0, wait() waits while the count is above 0, and
# wait(timeout=1) gives up with False.
START = 2
LATCH_STEPS = 20_000  # a controlled run here takes a few hundred steps: far more means spinning


def latch_model(count: int, name: str, *args: Any) -> Any:
    """A sequential latch: ``(result, new_count)``, or BLOCKS where it waits."""
    if name == "count_down":
        return None, max(0, count - 1)
    if name == "count":
        return count, count
    if name == "wait":
        return (True, count) if count == 0 else BLOCKS
    return count == 0, count  # wait(timeout=1)


LATCH_OPERATIONS = [
    Operation("count_down", lambda latch: latch.count_down()),
    Operation("count", lambda latch: latch.count),
    Operation("wait", lambda latch: latch.wait()),
    Operation("wait(timeout=1)", lambda latch: latch.wait(timeout=1)),
]


@pytest.mark.points(3)
@settings(max_examples=200, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(scenarios(LATCH_OPERATIONS, setup=LATCH_OPERATIONS[:1], max_setup=1), schedules(max_steps=LATCH_STEPS))
def test_count_down_count_and_wait_from_several_threads_are_linearizable(scenario, schedule):
    scenario.check(schedule, lambda: gate.CountDownLatch(START), latch_model, initial=START)


def gate_model(opened: bool, name: str, *args: Any) -> Any:
    """A sequential gate: ``(result, opened)``, or BLOCKS where it waits."""
    if name == "open":
        return None, True
    if name == "is_open":
        return opened, opened
    if name == "wait":
        return (True, opened) if opened else BLOCKS
    return opened, opened  # wait(timeout=1)


GATE_OPERATIONS = [
    Operation("open", lambda g: g.open()),
    Operation("is_open", lambda g: g.is_open),
    Operation("wait", lambda g: g.wait()),
    Operation("wait(timeout=1)", lambda g: g.wait(timeout=1)),
]


@pytest.mark.points(2)
@settings(max_examples=150, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(scenarios(GATE_OPERATIONS, max_setup=0), schedules(max_steps=LATCH_STEPS))
def test_open_is_open_and_wait_from_several_threads_are_linearizable(scenario, schedule):
    scenario.check(schedule, gate.StartingGate, gate_model, initial=False)
