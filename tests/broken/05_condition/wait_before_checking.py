"""wait_until waits before it looks at the value: a change made before the wait is lost."""

import threading

CAUGHT_BY = [
    "test_wait_until_returns_at_once_when_the_predicate_already_holds",
    "test_no_wakeup_is_lost_whoever_runs_first",
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
                self._cond.notify_all()
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
            self._cond.notify_all()

    def wait_until(self, predicate, timeout=None):
        with self._cond:
            while True:
                if not self._cond.wait(timeout):  # sleeps first: set() calls made earlier are missed
                    raise TimeoutError
                if predicate(self._value):
                    return self._value
