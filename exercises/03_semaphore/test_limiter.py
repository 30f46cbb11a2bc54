"""Graded tests of exercise 03: a concurrency limiter on a semaphore."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings

from pytest_concurrency import load_impl, schedules
from pytest_concurrency.testing import attribute_name

limiter = load_impl("limiter")

# Generous: a correct limiter meets every rendezvous in milliseconds.
PATIENCE = 10.0


class Boom(Exception):
    """The exception the tests' failing tasks raise."""


def boom(message: str = "boom"):
    raise Boom(message)


class Occupancy:
    """Who is inside right now, and every moment more than ``limit`` were.

    ``list.append`` and ``list.remove`` are single steps even under the
    controlled scheduler, so the record itself has no race.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inside: list[str] = []
        self.violations: list[list[str]] = []

    def visit(self, name: str) -> str:
        self.inside.append(name)
        crowd = list(self.inside)
        if len(crowd) > self.limit:
            self.violations.append(crowd)
        self.inside.remove(name)
        return name

    def verdict(self, what: str) -> str:
        return (
            f"{what}: with limit={self.limit}, {len(self.violations[0])} threads were inside "
            f"at once: {self.violations[0]}"
        )


# -- plain checks ---------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -2])
def test_limiter_limit_below_one_is_a_value_error(bad):
    with pytest.raises(ValueError):
        limiter.ConcurrencyLimiter(bad)


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -2])
def test_run_limited_limit_below_one_is_a_value_error(bad):
    with pytest.raises(ValueError):
        limiter.run_limited([lambda: 1], bad)


@pytest.mark.points(2)
def test_with_block_and_run_count_active():
    gate = limiter.ConcurrencyLimiter(2)
    assert gate.active == 0, f"a new limiter has active == {gate.active}, expected 0"
    with gate as entered:
        assert entered is gate, "__enter__ must return the limiter itself"
        assert gate.active == 1, f"inside one with block, active == {gate.active}, expected 1"
        assert gate.run(lambda x, y: (x + y, gate.active), 2, 3) == (5, 2), (
            "run(fn, *args) must return fn(*args), and count as one more thread inside"
        )
    assert gate.active == 0, f"after leaving, active == {gate.active}, expected 0"


@pytest.mark.points(2)
def test_releasing_more_than_acquired_is_a_value_error():
    gate = limiter.ConcurrencyLimiter(1)
    with pytest.raises(ValueError):
        gate.__exit__(None, None, None)
    assert gate.active == 0, f"after a refused extra release, active == {gate.active}, expected 0"


@pytest.mark.points(1)
def test_run_limited_with_no_tasks_returns_an_empty_list():
    assert limiter.run_limited([], 3) == []


@pytest.mark.points(3)
@pytest.mark.parametrize("limit", [1, 3])
def test_up_to_limit_tasks_really_run_at_the_same_time(limit):
    meet = threading.Barrier(limit, timeout=PATIENCE)

    def task(i: int):
        def meet_the_others() -> int:
            try:
                meet.wait()
            except threading.BrokenBarrierError:
                raise AssertionError(
                    f"{limit} tasks never ran at the same time with limit={limit}"
                ) from None
            return i

        return meet_the_others

    assert limiter.run_limited([task(i) for i in range(2 * limit)], limit) == list(range(2 * limit))


@pytest.mark.points(2)
def test_run_limited_returns_results_in_task_order_even_when_they_finish_in_reverse():
    n = 4
    finished = [threading.Event() for _ in range(n + 1)]
    finished[n].set()

    def task(i: int):
        def wait_for_the_next_one() -> int:
            if not finished[i + 1].wait(PATIENCE):
                raise AssertionError(f"task {i + 1} never finished while task {i} waited for it")
            finished[i].set()
            return i * 10

        return wait_for_the_next_one

    results = limiter.run_limited([task(i) for i in range(n)], n)
    assert results == [0, 10, 20, 30], (
        f"tasks finished in the order 3, 2, 1, 0; run_limited must still return their results "
        f"in task order [0, 10, 20, 30], got {results}"
    )


# -- through the controlled scheduler -------------------------------------------


@pytest.mark.points(3)
@given(schedules())
def test_never_more_than_limit_threads_inside_in_any_interleaving(schedule):
    gate = limiter.ConcurrencyLimiter(2)
    room = Occupancy(2)
    seen_active: list[int] = []

    def visitor(name: str):
        def visit() -> str:
            with gate:
                seen_active.append(gate.active)
                return room.visit(name)

        return visit

    schedule.run(
        *[visitor(f"with-{i}") for i in range(2)],
        *[lambda i=i: gate.run(room.visit, f"run-{i}") for i in range(2)],
    )
    assert not room.violations, room.verdict("ConcurrencyLimiter(2), 4 threads")
    wrong = [n for n in seen_active if not 1 <= n <= 2]
    assert not wrong, f"inside the with block, active was {wrong}: it must be between 1 and limit"
    assert gate.active == 0, (
        f"every thread left, yet active == {gate.active}: an update of the count was lost "
        f"(`{attribute_name(gate, 'active')} += 1` is not atomic; guard the count with a lock)"
    )


@pytest.mark.points(2)
@settings(max_examples=200)
@given(schedules())
def test_active_counts_every_thread_in_any_interleaving(schedule):
    gate = limiter.ConcurrencyLimiter(3)
    counts: list[int] = []

    def enter_twice() -> None:
        for _ in range(2):
            with gate:
                counts.append(gate.active)

    schedule.run(enter_twice, enter_twice, enter_twice)
    assert gate.active == 0, (
        f"3 threads entered and left twice each, yet active == {gate.active} at the end: "
        f"an update of the count was lost (`{attribute_name(gate, 'active')} += 1` is a read, an add "
        "and a write; "
        "another thread can run in between: guard the count with a lock)"
    )
    wrong = [n for n in counts if not 1 <= n <= 3]
    assert not wrong, f"inside the with block, active was {wrong}: it must be between 1 and 3"


@pytest.mark.points(3)
@given(schedules())
def test_run_limited_never_runs_more_than_limit_tasks_in_any_interleaving(schedule):
    room = Occupancy(2)
    tasks = [lambda i=i: room.visit(f"task-{i}") for i in range(4)]
    (results,) = schedule.run(lambda: limiter.run_limited(tasks, 2))
    assert not room.violations, room.verdict("run_limited(4 tasks, limit=2)")
    assert results == [f"task-{i}" for i in range(4)], f"results in task order, got {results}"


@pytest.mark.points(3)
@settings(max_examples=5)
@given(schedules(max_preemptions=0))
def test_an_exception_gives_the_slot_back(schedule):
    gate = limiter.ConcurrencyLimiter(1)

    def fail_then_go_on() -> str:
        with pytest.raises(Boom):
            gate.run(boom, "in run")
        with pytest.raises(Boom), gate:
            boom("in a with block")
        # With the one slot leaked, this blocks for ever: the scheduler
        # reports the deadlock at once.
        return gate.run(lambda: "still usable")

    assert schedule.run(fail_then_go_on) == ["still usable"]
    assert gate.active == 0, f"after exceptions, active == {gate.active}, expected 0"


@pytest.mark.points(3)
@settings(max_examples=5)
@given(schedules(max_preemptions=0))
def test_run_limited_raises_the_first_exception_after_every_task_finished(schedule):
    finished: list[str] = []

    def slow() -> None:
        time.sleep(5)  # virtual time
        finished.append("slow")

    def first_failure() -> None:
        finished.append("first")
        boom("first")

    def second_failure() -> None:
        time.sleep(1)
        finished.append("second")
        boom("second")

    def call() -> tuple[str, list[str]]:
        try:
            limiter.run_limited([first_failure, slow, second_failure, lambda: None], 4)
        except Boom as error:
            return str(error), sorted(finished)  # what had finished when it raised
        return "nothing raised", sorted(finished)

    ((raised, done),) = schedule.run(call)
    assert raised == "first", (
        f"tasks 0 and 2 raised: run_limited must raise task 0's exception ('first'), got {raised!r}"
    )
    assert done == ["first", "second", "slow"], (
        f"run_limited raised when only {done} had finished: it must wait for every task "
        "before raising"
    )
