"""Iterating a dict while another thread adds to it: RuntimeError."""

import threading


class Registry:
    def __init__(self):
        self.users = {"ann": 1, "bob": 2}
        self.lock = threading.Lock()

    def add(self, name):
        self.users[name] = len(self.users)

    def safe_add(self, name):
        with self.lock:
            self.users[name] = len(self.users)

    def names(self):
        return [name for name in self.users]

    def safe_names(self):
        with self.lock:
            return [name for name in self.users]


def buggy(schedule):
    registry = Registry()
    schedule.run(registry.names, lambda: registry.add("cy"))


def fixed(schedule):
    registry = Registry()
    schedule.run(registry.safe_names, lambda: registry.safe_add("cy"))
