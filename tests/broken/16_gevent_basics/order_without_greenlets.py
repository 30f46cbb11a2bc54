"""run_with_yield writes down the expected order without running any greenlet."""

# ruff: noqa  (deliberately broken: the solution with one mistake)

CAUGHT_BY = ['test_with_yield_the_greenlets_take_turns_step_by_step']


from collections.abc import Callable
from typing import Any

import gevent


def _check(n_tasks: int, steps: int) -> None:
    if n_tasks < 0 or steps < 0:
        raise ValueError(f"n_tasks and steps must be >= 0, got {n_tasks} and {steps}")


def run_without_yield(n_tasks: int, steps: int) -> list[tuple[int, int]]:
    """Each greenlet runs all its steps at once: nothing in its loop gives the turn away."""
    _check(n_tasks, steps)
    order: list[tuple[int, int]] = []

    def task(number: int) -> None:
        for step in range(steps):
            order.append((number, step))

    gevent.joinall([gevent.spawn(task, number) for number in range(n_tasks)])
    return order


def run_with_yield(n_tasks, steps):
    """Computes the expected order instead of running greenlets."""
    _check(n_tasks, steps)
    return [(task, step) for step in range(steps) for task in range(n_tasks)]


def gather(fns: list[Callable[[], Any]], timeout: float) -> list[Any]:
    """Run every fn in its own greenlet; results (or exceptions) in order.

    A greenlet still running after ``timeout`` seconds is killed and its slot
    holds a ``TimeoutError``.
    """
    if timeout < 0:
        raise ValueError(f"timeout must be >= 0, got {timeout}")
    greenlets = [gevent.spawn(fn) for fn in fns]
    gevent.joinall(greenlets, timeout=timeout)
    stragglers = [g for g in greenlets if not g.dead]
    gevent.killall(stragglers, block=True)
    results: list[Any] = []
    for g in greenlets:
        if g in stragglers:
            results.append(TimeoutError(f"still running after {timeout} s: killed"))
        elif g.successful():
            results.append(g.value)
        else:
            results.append(g.exception)
    return results
