"""Graded tests of exercise 05: a barrier and a watched value on ``threading.Condition``."""

from __future__ import annotations

import inspect
import threading
import time
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_concurrency import BLOCKS, Operation, Raises, load_impl, scenarios, schedules
from pytest_concurrency.testing import THREAD_PATIENCE as PATIENCE
from pytest_concurrency.testing import Background, timed, timeout_hint, wait_until_blocked

barrier = load_impl("barrier")

# The timeouts are tested on the virtual clock of schedules(): inside schedule.run,
# time.monotonic() and the timeouts of Condition.wait count virtual seconds, which
# only pass when every thread waits. A timeout of 3 s expires at exactly t=3, costs
# no real time, and does not depend on how busy the machine is.
TIMEOUT = 3.0
# A controlled run of these tests takes under 1,000 steps: far more means spinning.
MAX_STEPS = 20_000
# Tests whose outcome does not depend on the interleaving: a few schedules show it,
# and there is no "explain" phase rerunning a failure to no purpose.
timing_settings = settings(
    max_examples=5, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)


def with_a_partner(gate: Any) -> tuple[int, list[int]]:
    """Wait at ``gate`` while a partner thread does too: (my index, [the partner's index])."""
    theirs: list[int] = []
    partner = threading.Thread(target=lambda: theirs.append(gate.wait()), name="partner")
    partner.start()
    mine = gate.wait()
    partner.join()
    return mine, theirs


def assert_timed_out(what: str, outcome: tuple[str, Any, float], passing: str) -> None:
    """``outcome`` (from :func:`timed`) must be a TimeoutError after exactly TIMEOUT seconds."""
    how, value, took = outcome
    if how == "returned":
        pytest.fail(
            f"{what} returned {value!r} after {took:g} s (virtual): {passing}; after "
            f"timeout={TIMEOUT:g} s it must raise TimeoutError"
        )
    if not isinstance(value, TimeoutError):
        raise value
    assert took == pytest.approx(TIMEOUT), (
        f"{what} raised TimeoutError after {took:g} s (virtual), not after the timeout of "
        f"{TIMEOUT:g} s: {timeout_hint(took, TIMEOUT)}"
    )


# -- Barrier -------------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -2])
def test_fewer_than_one_party_is_a_value_error(bad):
    with pytest.raises(ValueError):
        barrier.Barrier(bad)


@pytest.mark.points(1)
def test_a_barrier_of_one_party_never_blocks():
    gate = barrier.Barrier(1)
    indexes = [gate.wait(timeout=PATIENCE) for _ in range(3)]
    assert indexes == [0, 0, 0], f"a 1-party barrier must return index 0 every time, got {indexes}"
    assert gate.parties == 1, f"Barrier(1).parties is {gate.parties!r}"


@pytest.mark.points(2)
@timing_settings
@given(schedules(max_steps=MAX_STEPS))
def test_a_lone_thread_is_not_let_through(schedule):
    gate = barrier.Barrier(3)
    (outcome,) = schedule.run(lambda: timed(gate.wait, TIMEOUT))
    assert_timed_out(
        f"Barrier(3).wait(timeout={TIMEOUT:g}) with 1 of 3 parties arrived", outcome,
        "no thread may pass before all parties arrive",
    )


@pytest.mark.points(2)
def test_all_parties_pass_together_with_distinct_indexes():
    n = 4
    gate = barrier.Barrier(n)
    jobs = [Background(gate.wait, PATIENCE, name=f"party-{i}") for i in range(n)]
    indexes = sorted(job.outcome("Barrier(4).wait with 4 parties arriving") for job in jobs)
    assert indexes == list(range(n)), (
        f"the 4 parties of one generation got indexes {indexes}; want each of 0, 1, 2, 3 once"
    )


@pytest.mark.points(2)
def test_the_index_is_the_arrival_order_and_the_last_arrival_opens_the_barrier():
    n = 3
    gate = barrier.Barrier(n)
    early = []
    for i in range(n - 1):
        early.append(Background(gate.wait, PATIENCE, name=f"arrival-{i}"))
        wait_until_blocked(early[-1].thread, f"arrival {i} of {n} at the barrier")
    last = gate.wait(timeout=PATIENCE)
    indexes = [job.outcome(f"arrival {i}, after the last party came") for i, job in enumerate(early)]
    assert indexes + [last] == list(range(n)), (
        f"parties arriving one after the other got indexes {indexes + [last]}; want [0, 1, 2]"
    )


@pytest.mark.points(3)
def test_the_last_arrival_releases_every_waiter_not_just_one():
    n = 4
    gate = barrier.Barrier(n)
    waiters = []
    for i in range(n - 1):
        # No timeout: a waiter nobody wakes must stay blocked, not slip out later.
        waiters.append(Background(gate.wait, name=f"waiter-{i}"))
        wait_until_blocked(waiters[-1].thread, f"waiter {i}")
    gate.wait(timeout=PATIENCE)
    stuck = []
    deadline = time.monotonic() + PATIENCE  # one patience for all: stuck waiters don't add up
    for job in waiters:
        job.thread.join(max(0.0, deadline - time.monotonic()))
        if job.thread.is_alive():
            stuck.append(job.thread.name)
    assert not stuck, (
        f"the last party arrived but {stuck} stayed blocked: notify() wakes one waiter, "
        "the barrier must wake them all (notify_all)"
    )


@pytest.mark.points(3)
@settings(max_examples=25)
@given(schedules(max_steps=MAX_STEPS))
def test_the_barrier_is_reusable_and_the_next_generation_waits_again(schedule):
    gate = barrier.Barrier(2)

    def three_generations() -> list[str]:
        problems = []
        for generation in range(3):
            mine, theirs = with_a_partner(gate)
            if sorted([mine, *theirs]) != [0, 1]:
                problems.append(
                    f"generation {generation}: the two parties got indexes {mine} and {theirs}; "
                    "want 0 and 1"
                )
            how, value, _ = timed(gate.wait, TIMEOUT)
            if how == "returned":
                problems.append(
                    f"after generation {generation} a lone thread passed the barrier (index "
                    f"{value}): the count must start again from zero in every generation"
                )
        return problems

    (problems,) = schedule.run(three_generations)
    assert not problems, "\n".join(problems)


@pytest.mark.points(3)
def test_many_generations_no_thread_runs_ahead():
    parties, rounds = 3, 30
    gate = barrier.Barrier(parties)
    arrived = [0] * rounds
    count_lock = threading.Lock()
    early: list[str] = []

    def party(name: str) -> None:
        for r in range(rounds):
            with count_lock:
                arrived[r] += 1
            gate.wait(timeout=PATIENCE)
            with count_lock:
                if arrived[r] < parties:
                    early.append(f"{name} left round {r} when {arrived[r]} of {parties} had arrived")

    jobs = [Background(party, f"party-{i}", name=f"party-{i}") for i in range(parties)]
    for job in jobs:
        job.outcome(f"{rounds} rounds through a {parties}-party barrier")
    assert not early, "threads passed the barrier too early:\n" + "\n".join(early[:5])


@pytest.mark.points(3)
@given(schedules(max_steps=MAX_STEPS))
def test_every_generation_waits_for_all_parties_in_many_interleavings(schedule):
    parties, rounds = 3, 2
    gate = barrier.Barrier(parties)
    arrivals: list[list[str]] = [[] for _ in range(rounds)]  # list.append is atomic
    early: list[str] = []

    def party(name: str) -> list[int]:
        indexes = []
        for r in range(rounds):
            arrivals[r].append(name)
            indexes.append(gate.wait())
            if len(arrivals[r]) < parties:
                early.append(f"{name} left round {r} when only {arrivals[r]} had arrived")
        return indexes

    results = schedule.run(*[lambda name=f"party-{i}": party(name) for i in range(parties)])
    assert not early, "a thread passed the barrier too early:\n" + "\n".join(early)
    for r in range(rounds):
        got = sorted(indexes[r] for indexes in results)
        assert got == list(range(parties)), f"round {r}: the parties got indexes {got}"


@pytest.mark.points(2)
@timing_settings
@given(schedules(max_steps=MAX_STEPS))
def test_a_thread_that_timed_out_no_longer_counts_as_arrived(schedule):
    gate = barrier.Barrier(2)

    def give_up_then_wait_again() -> tuple[tuple, tuple, list[int]]:
        gave_up = timed(gate.wait, TIMEOUT)
        alone_again = timed(gate.wait, TIMEOUT)
        mine, theirs = with_a_partner(gate)
        return gave_up, alone_again, sorted([mine, *theirs])

    ((gave_up, alone_again, pair),) = schedule.run(give_up_then_wait_again)
    assert_timed_out("the first wait() of a lone thread at a 2-party barrier", gave_up,
                     "no thread may pass before all parties arrive")
    assert_timed_out(
        "a second wait() of the lone thread, after its first one timed out", alone_again,
        "an earlier thread that timed out must no longer count as arrived",
    )
    assert pair == [0, 1], f"a fresh pair after the timeouts got indexes {pair}; want 0 and 1"


@pytest.mark.points(1)
def test_built_on_condition_not_threading_barrier(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("Barrier must be built on threading.Condition, not threading.Barrier")

    monkeypatch.setattr(threading.Barrier, "__init__", forbidden)
    gate = barrier.Barrier(2)
    partner = Background(gate.wait, PATIENCE, name="partner")
    gate.wait(timeout=PATIENCE)
    partner.outcome("a pair at a 2-party barrier")
    source = inspect.getsource(barrier)
    assert "threading.Barrier" not in source and "import Barrier" not in source, (
        "barrier.py uses threading.Barrier: build it with threading.Condition"
    )


# -- ValueWatch ----------------------------------------------------------------------------


@pytest.mark.points(1)
def test_value_is_the_initial_value_then_the_last_one_set():
    watch = barrier.ValueWatch("start")
    assert watch.value == "start", f"ValueWatch('start').value is {watch.value!r}"
    watch.set(42)
    assert watch.value == 42, f"after set(42) the value is {watch.value!r}"


@pytest.mark.points(2)
def test_wait_until_returns_at_once_when_the_predicate_already_holds():
    watch = barrier.ValueWatch(0)
    watch.set(5)  # before anybody waits: this change must not be lost
    job = Background(watch.wait_until, lambda v: v == 5, PATIENCE, name="late-waiter")
    assert job.outcome("wait_until(v == 5) after set(5)") == 5


@pytest.mark.points(2)
@given(schedules(max_steps=MAX_STEPS))
def test_no_wakeup_is_lost_whoever_runs_first(schedule):
    watch = barrier.ValueWatch(0)
    waited, _ = schedule.run(lambda: watch.wait_until(lambda v: v == 1), lambda: watch.set(1))
    assert waited == 1, f"wait_until(v == 1) returned {waited!r}"


@pytest.mark.points(2)
def test_wait_until_wakes_when_another_thread_sets_a_matching_value():
    watch = barrier.ValueWatch(0)
    job = Background(watch.wait_until, lambda v: v >= 10, PATIENCE, name="waiter")
    wait_until_blocked(job.thread, "wait_until(v >= 10) while the value is 0")
    watch.set(10)
    assert job.outcome("wait_until(v >= 10) after set(10)") == 10


@pytest.mark.points(2)
def test_wait_until_checks_the_predicate_again_after_every_wakeup():
    watch = barrier.ValueWatch(0)
    checks = 0
    checked_again_or_gave_up = threading.Event()

    def at_least_ten(value: Any) -> bool:
        nonlocal checks
        checks += 1
        if checks >= 2:
            checked_again_or_gave_up.set()
        return value >= 10

    def waiter() -> Any:
        try:
            return watch.wait_until(at_least_ten, PATIENCE)
        finally:
            checked_again_or_gave_up.set()

    job = Background(waiter, name="waiter")
    wait_until_blocked(job.thread, "wait_until(v >= 10) while the value is 0")
    watch.set(5)  # wakes the waiter, whose predicate is still false
    # The predicate runs under the lock: once it said False again, the waiter
    # is back in wait() before set(10) can take the lock.
    checked_again_or_gave_up.wait(PATIENCE)
    if not job.thread.is_alive() and job.error is None:
        pytest.fail(
            f"wait_until(v >= 10) returned {job.value!r} after set(5): after a wakeup, check the "
            "predicate again and keep waiting while it is false (while, not if)"
        )
    watch.set(10)
    assert job.outcome("wait_until(v >= 10) after set(10)") == 10


@pytest.mark.points(2)
def test_every_waiter_wakes_not_just_one():
    watch = barrier.ValueWatch(0)
    jobs = [
        Background(watch.wait_until, predicate, name=name)  # no timeout, as above
        for name, predicate in [("even-waiter", lambda v: v % 2 == 0 and v > 0),
                                ("big-waiter", lambda v: v > 3)]
    ]
    for job in jobs:
        wait_until_blocked(job.thread, job.thread.name)
    watch.set(4)
    stuck = []
    for job in jobs:
        job.thread.join(PATIENCE)
        if job.thread.is_alive() or job.error is not None:
            stuck.append(job.thread.name)
    assert not stuck, (
        f"set(4) satisfied both waiters but {stuck} never woke: waiters wait for different "
        "things, so set() must wake them all (notify_all)"
    )


@pytest.mark.points(1)
@timing_settings
@given(schedules(max_steps=MAX_STEPS))
def test_wait_until_raises_timeout_error_when_the_predicate_never_holds(schedule):
    watch = barrier.ValueWatch(1)
    (outcome,) = schedule.run(lambda: timed(watch.wait_until, lambda v: v > 100, TIMEOUT))
    assert_timed_out(f"wait_until(v > 100, timeout={TIMEOUT:g}) while the value stayed 1", outcome,
                     "the predicate never held")


# -- linearizability: ValueWatch's set, value and wait_until from several threads at once -------
# Hypothesis draws small scenarios (2-3 threads of 1-3 calls, a set-up and an after part),
# each runs under a drawn schedule, and every result must be explained by some sequential
# order of the calls: wait_until returns a value its predicate holds for, waits while it
# does not (and with timeout=1 raises TimeoutError).
def at_least_one(value: int) -> bool:
    return value >= 1


def is_two(value: int) -> bool:
    return value == 2


def watch_model(value: int, name: str, *args: Any) -> Any:
    """A sequential watched value: ``(result, new_value)``, or BLOCKS where it waits."""
    if name == "set":
        return None, args[0]
    if name == "value":
        return value, value
    if name == "wait_until(>= 1)":
        return (value, value) if at_least_one(value) else BLOCKS
    return (value, value) if is_two(value) else (Raises(TimeoutError), value)  # wait_until(== 2, timeout=1)


WATCH_OPERATIONS = [
    Operation("set", lambda w, v: w.set(v), st.sampled_from([0, 1, 2])),
    Operation("value", lambda w: w.value),
    Operation("wait_until(>= 1)", lambda w: w.wait_until(at_least_one)),
    Operation("wait_until(== 2, timeout=1)", lambda w: w.wait_until(is_two, timeout=1)),
]


@pytest.mark.points(2)
@settings(max_examples=200, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(scenarios(WATCH_OPERATIONS, setup=WATCH_OPERATIONS[:1], max_setup=1), schedules(max_steps=MAX_STEPS))
def test_value_watch_from_several_threads_is_linearizable(scenario, schedule):
    scenario.check(schedule, lambda: barrier.ValueWatch(0), watch_model, initial=0)
