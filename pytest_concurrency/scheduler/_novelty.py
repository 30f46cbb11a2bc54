"""Examples that repeat an interleaving already run do not count: coverage for ``schedules()``.

Many drawn schedules play the same interleaving as an earlier one: a
preemption placed past the end of a short run, or a window in code that holds
its lock, changes nothing.  A repeated interleaving that passed once passes
again, so it spends an example of ``max_examples`` on nothing.  Hypothesis
lets a plugin wrap the function it calls for each example
(``test.hypothesis.inner_test``); the wrapper marks a passing example whose
runs were all seen before as invalid (``hypothesis.reject()``), and Hypothesis
draws another one in its place.  Failing examples are never rejected, and a
schedule still replays exactly: only which examples count has changed.

::

    from pytest_concurrency.scheduler._novelty import count_new_interleavings_only

    test.hypothesis.inner_test = count_new_interleavings_only(test.hypothesis.inner_test)

A scenario with fewer interleavings than ``max_examples`` runs out of new
ones: each new interleaving earns a budget of ``REJECTS_PER_NEW`` rejected
repeats, after which repeats count again.  That bounds the cost (at most
``1 + REJECTS_PER_NEW`` runs per example) and keeps Hypothesis's health
check (50 rejected before 10 valid examples) quiet.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["REJECTS_PER_NEW", "REPEAT_EVENT", "Novelty", "count_new_interleavings_only", "counting", "ran"]

REJECTS_PER_NEW = 3
REPEAT_EVENT = "an interleaving already run: not counted as an example"

# The interleavings of the runs made by the example being run, if counted.
_runs: contextvars.ContextVar[list[Hashable] | None] = contextvars.ContextVar("_runs", default=None)


def counting() -> bool:
    """True inside an example whose runs are counted: only then is an interleaving worth its key."""
    return _runs.get() is not None


def ran(interleaving: Hashable) -> None:
    """Tell the example being run (if counted) that one of its runs played ``interleaving``."""
    runs = _runs.get()
    if runs is not None:
        runs.append(interleaving)


class Novelty:
    """The interleavings one test's passing examples have played, and the repeats rejected."""

    def __init__(self, rejects_per_new: int = REJECTS_PER_NEW) -> None:
        self.rejects_per_new = rejects_per_new
        self.seen: set[tuple[Hashable, ...]] = set()
        self.rejected = 0

    @property
    def new(self) -> int:
        """How many examples played an interleaving (or a sequence of runs) not seen before."""
        return len(self.seen)

    def should_reject(self, runs: list[Hashable]) -> bool:
        """Note a passing example's runs; True if it repeats and the budget allows a reject."""
        if not runs:  # the example ran no schedule: nothing to say about it
            return False
        key = tuple(runs)
        if key not in self.seen:
            self.seen.add(key)
            return False
        if self.rejected >= self.rejects_per_new * self.new:
            return False
        self.rejected += 1
        return True


_F = TypeVar("_F", bound=Callable[..., Any])


def count_new_interleavings_only(inner_test: _F, novelty: Novelty | None = None) -> _F:
    """Wrap a Hypothesis ``inner_test`` so that repeated interleavings are rejected (see above)."""
    from hypothesis import event, reject

    state = novelty if novelty is not None else Novelty()

    @functools.wraps(inner_test)
    def counted(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # a failure is the test's: pytest shows its frames, not ours
        runs: list[Hashable] = []
        token = _runs.set(runs)
        try:
            result = inner_test(*args, **kwargs)
        finally:
            _runs.reset(token)
        if state.should_reject(runs):
            event(REPEAT_EVENT)  # what --hypothesis-show-statistics says of these
            reject()
        return result

    counted.novelty = state  # type: ignore[attr-defined]  # for tests and benchmarks
    return counted  # type: ignore[return-value]
