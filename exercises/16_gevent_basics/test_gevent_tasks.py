"""Graded tests of exercise 16: gevent's spawn, joinall and sleep(0).

None of these needs monkey patching: gevent.sleep and gevent's Events switch
greenlets by themselves.  Waiting uses gevent Events, so no test depends on
the speed of the machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
import gevent.event
import greenlet
import pytest

from pytest_concurrency import load_impl

gevent_tasks = load_impl("gevent_tasks")

PATIENCE = 10.0


@contextmanager
def switch_count() -> Iterator[list[int]]:
    """How many greenlet switches happened in this thread while the block ran."""
    count = [0]

    def trace(event, args):
        count[0] += 1

    previous = greenlet.settrace(trace)
    try:
        yield count
    finally:
        greenlet.settrace(previous)


# --- the course text's two experiments --------------------------------------------------------


@pytest.mark.points(2)
def test_without_yield_each_greenlet_runs_all_its_steps_in_one_go():
    order = gevent_tasks.run_without_yield(3, 4)
    assert order == [(task, step) for task in range(3) for step in range(4)], (
        f"without gevent.sleep(0) nothing in a task's loop switches: task 0 does all its steps, "
        f"then task 1...; got {order}"
    )


@pytest.mark.points(3)
def test_with_yield_the_greenlets_take_turns_step_by_step():
    with switch_count() as switches:
        order = gevent_tasks.run_with_yield(3, 4)
    assert order == [(task, step) for step in range(4) for task in range(3)], (
        f"gevent.sleep(0) after each step hands the turn to the next greenlet: (0, 0), (1, 0), "
        f"(2, 0), (0, 1)...; got {order}"
    )
    assert switches[0] >= 12, (
        f"12 steps that take turns need greenlet switches, but only {switches[0]} happened: "
        f"spawn the tasks with gevent.spawn and yield with gevent.sleep(0)"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("run", ["run_without_yield", "run_with_yield"])
def test_no_tasks_or_no_steps_give_an_empty_order_and_negatives_are_errors(run):
    experiment = getattr(gevent_tasks, run)
    assert experiment(0, 5) == []
    assert experiment(4, 0) == []
    with pytest.raises(ValueError):
        experiment(-1, 2)


@pytest.mark.points(1)
def test_one_task_is_the_same_either_way():
    assert gevent_tasks.run_with_yield(1, 3) == gevent_tasks.run_without_yield(1, 3) == [(0, 0), (0, 1), (0, 2)]


# --- gather -----------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_gather_runs_the_functions_concurrently_and_keeps_their_order():
    # fn i waits until fn i+1 has finished: they finish in reverse order, and only if they
    # all run at the same time.
    n = 4
    done = [gevent.event.Event() for _ in range(n + 1)]
    done[n].set()

    def make(i):
        def fn():
            # A few seconds: concurrent fns meet in microseconds, sequential ones never do.
            if not done[i + 1].wait(3.0):
                raise AssertionError(f"fn {i + 1} never finished while fn {i} waited for it")
            done[i].set()
            return i * 10

        return fn

    results = gevent_tasks.gather([make(i) for i in range(n)], timeout=PATIENCE)
    assert results == [0, 10, 20, 30], f"gather returns the results in the order of fns: {results}"


@pytest.mark.points(2)
def test_gather_returns_an_exception_in_place_of_the_result():
    class Boom(Exception):
        pass

    def bad():
        raise Boom("fn 1 failed")

    results = gevent_tasks.gather([lambda: "a", bad, lambda: "c"], timeout=PATIENCE)
    assert results[0] == "a" and results[2] == "c", results
    assert isinstance(results[1], Boom), f"a function that raised gives its exception object: {results}"


@pytest.mark.points(3)
def test_gather_kills_the_stragglers_after_the_timeout():
    unwound = []
    never = gevent.event.Event()

    def straggler():
        try:
            never.wait()  # until killed
        finally:
            unwound.append("straggler")

    started = time.monotonic()
    results = gevent_tasks.gather([lambda: 1, straggler], timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < PATIENCE, f"gather(timeout=0.5) took {elapsed:.1f} s"
    assert results[0] == 1
    assert isinstance(results[1], TimeoutError), (
        f"a function still running at the timeout gives a TimeoutError, got {results[1]!r}"
    )
    assert unwound == ["straggler"], (
        "the straggler must be killed (gevent.killall / Greenlet.kill) before gather returns, "
        "not left running"
    )


@pytest.mark.points(1)
def test_gather_of_nothing_is_an_empty_list():
    assert gevent_tasks.gather([], timeout=1) == []
