"""Graded tests of exercise 15: greenlets switched by hand."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import greenlet
import pytest

from pytest_concurrency import load_impl

pingpong = load_impl("pingpong")


@contextmanager
def switches() -> Iterator[list[tuple[greenlet.greenlet, greenlet.greenlet]]]:
    """Every greenlet switch in this thread while the block runs, as (origin, target)."""
    seen: list[tuple[greenlet.greenlet, greenlet.greenlet]] = []

    def trace(event, args):
        if event in ("switch", "throw"):
            seen.append(args)

    previous = greenlet.settrace(trace)
    try:
        yield seen
    finally:
        greenlet.settrace(previous)


# --- ping_pong ------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_ping_pong_takes_turns():
    assert pingpong.ping_pong(3) == ["ping 0", "pong 0", "ping 1", "pong 1", "ping 2", "pong 2"]


@pytest.mark.points(1)
def test_ping_pong_of_zero_says_nothing_and_negative_is_a_value_error():
    assert pingpong.ping_pong(0) == []
    with pytest.raises(ValueError):
        pingpong.ping_pong(-1)


@pytest.mark.points(2)
def test_ping_pong_switches_between_two_greenlets():
    main = greenlet.getcurrent()
    with switches() as seen:
        said = pingpong.ping_pong(4)
    assert said == [f"{who} {i}" for i in range(4) for who in ("ping", "pong")]
    players = {g for pair in seen for g in pair} - {main}
    between_players = [pair for pair in seen if main not in pair]
    assert len(players) == 2, (
        f"ping_pong must play with exactly two greenlets that switch to each other; saw {len(players)}"
    )
    assert len(between_players) >= 7, (
        f"4 rounds need at least 7 switches from one player straight to the other; saw "
        f"{len(between_players)} (switch ping -> pong -> ping directly, not through the caller)"
    )


# --- RoundRobin -----------------------------------------------------------------------------


def worker(scheduler, log: list[str], name: str, turns: int) -> None:
    for turn in range(turns):
        log.append(f"{name}{turn}")
        if turn < turns - 1:
            scheduler.pause()


@pytest.mark.points(3)
def test_round_robin_runs_one_step_of_each_task_in_turn():
    scheduler = pingpong.RoundRobin()
    log: list[str] = []
    scheduler.spawn(worker, scheduler, log, "a", 3)
    scheduler.spawn(worker, scheduler, log, "b", 2)
    scheduler.spawn(worker, scheduler, log, "c", 1)
    steps = scheduler.run()
    assert log == ["a0", "b0", "c0", "a1", "b1", "a2"], f"the tasks did not take turns: {log}"
    assert steps == [0, 1, 2, 0, 1, 0], (
        f"run() returns the task number (0, 1, 2 in spawn order) of every step in order; got {steps}"
    )


@pytest.mark.points(1)
def test_run_without_tasks_returns_no_steps():
    assert pingpong.RoundRobin().run() == []


@pytest.mark.points(1)
def test_spawn_passes_the_arguments():
    scheduler = pingpong.RoundRobin()
    got = []
    scheduler.spawn(lambda *args: got.append(args), 1, "two", None)
    scheduler.run()
    assert got == [(1, "two", None)]


@pytest.mark.points(2)
def test_a_task_spawned_while_running_joins_the_end_of_the_rotation():
    scheduler = pingpong.RoundRobin()
    log: list[str] = []

    def parent():
        log.append("p0")
        scheduler.spawn(worker, scheduler, log, "k", 2)
        scheduler.pause()
        log.append("p1")

    scheduler.spawn(parent)
    scheduler.spawn(worker, scheduler, log, "b", 3)
    steps = scheduler.run()
    assert log == ["p0", "b0", "k0", "p1", "b1", "k1", "b2"], log
    assert steps == [0, 1, 2, 0, 1, 2, 1], steps


@pytest.mark.points(2)
def test_an_exception_in_a_task_is_raised_by_run():
    class Boom(Exception):
        pass

    def bad():
        scheduler.pause()
        raise Boom("task 1 failed")

    scheduler = pingpong.RoundRobin()
    scheduler.spawn(worker, scheduler, [], "a", 5)
    scheduler.spawn(bad)
    with pytest.raises(Boom, match="task 1 failed"):
        scheduler.run()


@pytest.mark.points(1)
def test_pause_outside_a_task_is_a_runtime_error():
    scheduler = pingpong.RoundRobin()
    with pytest.raises(RuntimeError):
        scheduler.pause()


@pytest.mark.points(2)
def test_everything_runs_in_the_callers_os_thread_on_greenlets():
    scheduler = pingpong.RoundRobin()
    threads = set()

    def task():
        for _ in range(3):
            threads.add(threading.get_ident())
            scheduler.pause()

    for _ in range(4):
        scheduler.spawn(task)
    with switches() as seen:
        steps = scheduler.run()
    assert threads == {threading.get_ident()}, "every task runs in the thread that called run()"
    assert len(steps) == 16
    assert len(seen) >= 16, f"16 steps but only {len(seen)} greenlet switches: each task is a greenlet"


@pytest.mark.points(1)
def test_many_tasks_stay_fair():
    scheduler = pingpong.RoundRobin()
    log: list[str] = []
    for i in range(50):
        scheduler.spawn(worker, scheduler, log, f"t{i}-", 3)
    steps = scheduler.run()
    assert steps == list(range(50)) * 3
