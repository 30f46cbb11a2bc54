"""A thread that timed out still counts as arrived: later a lone thread walks through."""

import threading

CAUGHT_BY = ["test_a_thread_that_timed_out_no_longer_counts_as_arrived"]


class Barrier:
    def __init__(self, parties):
        if parties < 1:
            raise ValueError(parties)
        self.parties = parties
        self._cond = threading.Condition()
        self._arrived = 0
        self._generation = 0

    def wait(self, timeout=None):
        with self._cond:
            index = self._arrived
            self._arrived += 1
            if self._arrived == self.parties:
                self._arrived = 0
                self._generation += 1
                self._cond.notify_all()
                return index
            generation = self._generation
            if not self._cond.wait_for(lambda: self._generation != generation, timeout):
                raise TimeoutError  # forgets to take its arrival back
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
