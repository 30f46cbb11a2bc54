"""Waiters wait for "count == parties", but the last arrival has already reset the count to 0."""

import threading

CAUGHT_BY = [
    "test_all_parties_pass_together_with_distinct_indexes",
    "test_the_last_arrival_releases_every_waiter_not_just_one",
    "test_many_generations_no_thread_runs_ahead",
]


class Barrier:
    def __init__(self, parties):
        if parties < 1:
            raise ValueError(parties)
        self.parties = parties
        self._cond = threading.Condition()
        self._arrived = 0

    def wait(self, timeout=None):
        with self._cond:
            index = self._arrived
            self._arrived += 1
            if self._arrived == self.parties:
                self._arrived = 0  # ready for the next round...
                self._cond.notify_all()
                return index
            # ...so this predicate is false again by the time the waiters wake up.
            if not self._cond.wait_for(lambda: self._arrived == self.parties, timeout):
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
