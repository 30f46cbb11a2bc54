"""notify() where notify_all() is needed: only one waiter wakes, the others sleep on."""

import threading

CAUGHT_BY = [
    "test_the_last_arrival_releases_every_waiter_not_just_one",
    "test_every_waiter_wakes_not_just_one",
]


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
                self._cond.notify()
                return index
            generation = self._generation
            if not self._cond.wait_for(lambda: self._generation != generation, timeout):
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
            self._cond.notify()

    def wait_until(self, predicate, timeout=None):
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self._value), timeout):
                raise TimeoutError
            return self._value
