"""Lock too narrow: the read is locked, the write is locked, the pair is not."""

import threading


class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def incr(self):
        with self.lock:
            value = self.n
        with self.lock:
            self.n = value + 1

    def safe_incr(self):
        with self.lock:
            value = self.n
            self.n = value + 1


def buggy(schedule):
    counter = Counter()
    schedule.run(counter.incr, counter.incr, counter.incr)
    assert counter.n == 3, f"lost update: n = {counter.n} after 3 increments"


def fixed(schedule):
    counter = Counter()
    schedule.run(counter.safe_incr, counter.safe_incr, counter.safe_incr)
    assert counter.n == 3, f"lost update: n = {counter.n} after 3 increments"
