"""Wraps threading.Barrier instead of building the barrier on a Condition."""

import threading

CAUGHT_BY = ["test_built_on_condition_not_threading_barrier"]


class Barrier:
    def __init__(self, parties):
        if parties < 1:
            raise ValueError(parties)
        self.parties = parties
        self._barrier = threading.Barrier(parties)

    def wait(self, timeout=None):
        try:
            return self._barrier.wait(timeout)
        except threading.BrokenBarrierError:
            self._barrier.reset()
            raise TimeoutError from None


class ValueWatch:
    def __init__(self, initial):
        self._value = initial
        self._cond = threading.Condition()

    @property
    def value(self):
        return self._value

    def set(self, value):
        with self._cond:
            self._value = value
            self._cond.notify_all()

    def wait_until(self, predicate, timeout=None):
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._value), timeout):
                raise TimeoutError
            return self._value
