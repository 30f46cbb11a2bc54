"""Lost update: two threads do `self.n += 1`; one increment is lost."""

import threading


class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def incr(self):
        self.n += 1

    def safe_incr(self):
        with self.lock:
            self.n += 1


def buggy(schedule):
    counter = Counter()
    schedule.run(counter.incr, counter.incr)
    assert counter.n == 2, f"lost update: n = {counter.n} after 2 increments"


def fixed(schedule):
    counter = Counter()
    schedule.run(counter.safe_incr, counter.safe_incr)
    assert counter.n == 2, f"lost update: n = {counter.n} after 2 increments"
