"""Treats the timeout as milliseconds: wait(timeout=3) gives up after 3 ms, not 3 s."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

CAUGHT_BY = [
    "test_a_lone_thread_is_not_let_through",
    "test_a_thread_that_timed_out_no_longer_counts_as_arrived",
    "test_wait_until_raises_timeout_error_when_the_predicate_never_holds",
]


class Barrier:
    """Lets ``parties`` threads wait for each other, again and again.

    >>> barrier = Barrier(1)
    >>> barrier.wait(), barrier.wait()
    (0, 0)
    """

    def __init__(self, parties: int) -> None:
        if parties < 1:
            raise ValueError(f"a barrier needs at least 1 party, got {parties}")
        self.parties = parties
        self._changed = threading.Condition()
        self._arrived = 0
        # Waiters wait for the generation to change, not for a count: the last
        # arrival resets the count at once, and a fast thread may already be
        # back for the next round before the others wake up.
        self._generation = 0

    def wait(self, timeout: float | None = None) -> int:
        with self._changed:
            index = self._arrived
            self._arrived += 1
            if self._arrived == self.parties:
                self._arrived = 0
                self._generation += 1
                self._changed.notify_all()
                return index
            generation = self._generation
            seconds = None if timeout is None else timeout / 1000
            if not self._changed.wait_for(lambda: self._generation != generation, seconds):
                self._arrived -= 1  # a thread that gave up no longer counts as arrived
                raise TimeoutError(
                    f"the barrier did not open within {timeout} s: "
                    f"{self._arrived + 1} of {self.parties} parties had arrived"
                )
            return index


class ValueWatch:
    """A value that threads can wait on until it satisfies a predicate.

    >>> watch = ValueWatch(3)
    >>> watch.set(7)
    >>> watch.wait_until(lambda v: v > 5)
    7
    """

    def __init__(self, initial: Any) -> None:
        self._value = initial
        self._changed = threading.Condition()

    @property
    def value(self) -> Any:
        with self._changed:
            return self._value

    def set(self, value: Any) -> None:
        with self._changed:
            self._value = value
            # Waiters wait for different things: wake them all, each re-checks its own predicate.
            self._changed.notify_all()

    def wait_until(self, predicate: Callable[[Any], bool], timeout: float | None = None) -> Any:
        with self._changed:
            seconds = None if timeout is None else timeout / 1000
            if not self._changed.wait_for(lambda: predicate(self._value), seconds):
                raise TimeoutError(
                    f"the value is still {self._value!r} after {timeout} s: the predicate never held"
                )
            return self._value
