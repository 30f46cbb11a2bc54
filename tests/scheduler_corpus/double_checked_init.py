"""Lazy initialisation without a lock: the expensive object is built twice."""

import threading


class Lazy:
    def __init__(self):
        self.instance = None
        self.builds = 0
        self.lock = threading.Lock()

    def _build(self):
        self.builds += 1
        return [self.builds]

    def get(self):
        if self.instance is None:
            self.instance = self._build()
        return self.instance

    def safe_get(self):
        if self.instance is None:
            with self.lock:
                if self.instance is None:
                    self.instance = self._build()
        return self.instance


def buggy(schedule):
    lazy = Lazy()
    schedule.run(lazy.get, lazy.get)
    assert lazy.builds == 1, f"built {lazy.builds} times"


def fixed(schedule):
    lazy = Lazy()
    schedule.run(lazy.safe_get, lazy.safe_get)
    assert lazy.builds == 1, f"built {lazy.builds} times"
