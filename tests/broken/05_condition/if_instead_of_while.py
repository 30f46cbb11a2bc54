"""`if` instead of `while` around wait(): a wakeup is taken as "my condition holds"."""

import threading

CAUGHT_BY = [
    "test_a_lone_thread_is_not_let_through",
    "test_wait_until_checks_the_predicate_again_after_every_wakeup",
    "test_wait_until_raises_timeout_error_when_the_predicate_never_holds",
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
                self._arrived = 0
                self._cond.notify_all()
                return index
            if self._arrived < self.parties:
                self._cond.wait(timeout)  # woken or timed out: either way, "open"
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
            if not predicate(self._value):
                self._cond.wait(timeout)
            return self._value
