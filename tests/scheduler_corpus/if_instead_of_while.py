"""`if` instead of `while` around Condition.wait: two consumers take one item."""

import threading


class Box:
    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def take(self):
        with self.cond:
            if not self.items:
                self.cond.wait()
            return self.items.pop()

    def safe_take(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            return self.items.pop()

    def put_then_stop(self, consumers):
        for i in range(consumers):
            with self.cond:
                self.items.append(i)
                self.cond.notify_all()


def _scenario(schedule, take):
    box = Box()
    took = schedule.run(
        lambda: take(box), lambda: take(box), lambda: box.put_then_stop(2)
    )
    assert sorted(took[:2]) == [0, 1]


def buggy(schedule):
    _scenario(schedule, Box.take)


def fixed(schedule):
    _scenario(schedule, Box.safe_take)
