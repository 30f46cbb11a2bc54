"""Check-then-act: `if key not in cache: cache[key] = make()` makes two objects."""

import threading


class Registry:
    def __init__(self):
        self.items = {}
        self.made = 0
        self.lock = threading.Lock()

    def get(self, key):
        if key not in self.items:
            self.made += 1
            self.items[key] = object()
        return self.items[key]

    def safe_get(self, key):
        with self.lock:
            if key not in self.items:
                self.made += 1
                self.items[key] = object()
            return self.items[key]


def _scenario(schedule, method):
    first, second = schedule.run(lambda: method("k"), lambda: method("k"))
    assert first is second, "two threads got two different objects for one key"


def buggy(schedule):
    _scenario(schedule, Registry().get)


def fixed(schedule):
    _scenario(schedule, Registry().safe_get)
