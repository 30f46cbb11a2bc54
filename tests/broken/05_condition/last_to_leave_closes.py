"""The barrier is closed by the last thread to leave: a fast thread re-enters while it is still open."""

import threading

CAUGHT_BY = ["test_every_generation_waits_for_all_parties_in_every_interleaving"]


class Barrier:
    def __init__(self, parties):
        if parties < 1:
            raise ValueError(parties)
        self.parties = parties
        self._cond = threading.Condition()
        self._arrived = 0
        self._open = False

    def wait(self, timeout=None):
        with self._cond:
            index = self._arrived
            self._arrived += 1
            if self._arrived == self.parties:
                self._open = True
                self._cond.notify_all()
            elif not self._cond.wait_for(lambda: self._open, timeout):
                self._arrived -= 1
                raise TimeoutError
            # Leaving: the last one out closes the barrier. Until then it stays
            # open, and a thread that comes back for the next round walks through.
            self._arrived -= 1
            if self._arrived == 0:
                self._open = False
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
