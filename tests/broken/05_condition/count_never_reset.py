"""The arrival count is never reset: after the first generation every thread walks through."""

import threading

CAUGHT_BY = ["test_the_barrier_is_reusable_and_the_next_generation_waits_again"]


class Barrier:
    def __init__(self, parties):
        if parties < 1:
            raise ValueError(parties)
        self.parties = parties
        self._cond = threading.Condition()
        self._arrived = 0

    def wait(self, timeout=None):
        with self._cond:
            index = self._arrived % self.parties
            self._arrived += 1
            if self._arrived >= self.parties:
                self._cond.notify_all()
                return index
            if not self._cond.wait_for(lambda: self._arrived >= self.parties, timeout):
                self._arrived -= 1
                raise TimeoutError
            return index


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
