"""notify() instead of notify_all() with one Condition for "not full" and "not empty"."""

import threading


class Buffer:
    def __init__(self, capacity, wake_all):
        self.items = []
        self.capacity = capacity
        self.cond = threading.Condition()
        self.wake_all = wake_all

    def _wake(self):
        if self.wake_all:
            self.cond.notify_all()
        else:
            self.cond.notify()

    def put(self, item):
        with self.cond:
            while len(self.items) >= self.capacity:
                self.cond.wait()
            self.items.append(item)
            self._wake()

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            item = self.items.pop(0)
            self._wake()
            return item


def _scenario(schedule, wake_all):
    buffer = Buffer(1, wake_all)

    def produce():
        buffer.put(1)
        buffer.put(2)

    def consume():
        buffer.get()
        buffer.get()

    schedule.run(consume, consume, produce, produce)


def buggy(schedule):
    _scenario(schedule, wake_all=False)


def fixed(schedule):
    _scenario(schedule, wake_all=True)
