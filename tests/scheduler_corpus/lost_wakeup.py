"""Lost wakeup: the waiter checks the flag outside the lock, the notify comes before its wait."""

import threading


class Signal:
    def __init__(self):
        self.ready = False
        self.cond = threading.Condition()

    def wait(self):
        if not self.ready:
            with self.cond:
                self.cond.wait()

    def safe_wait(self):
        with self.cond:
            while not self.ready:
                self.cond.wait()

    def fire(self):
        with self.cond:
            self.ready = True
            self.cond.notify_all()


def buggy(schedule):
    signal = Signal()
    schedule.run(signal.wait, signal.fire)


def fixed(schedule):
    signal = Signal()
    schedule.run(signal.safe_wait, signal.fire)
