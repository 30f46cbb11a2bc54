"""Ticks first and checks for stop only after waiting: a clock stopped before start still ticks once."""

import threading

CAUGHT_BY = ["test_a_clock_stopped_before_start_never_ticks"]


def _loop(interval, tick, stopped):
    n = 0
    tick(n)
    while not stopped.wait(interval):
        n += 1
        tick(n)


class ClockThread(threading.Thread):
    def __init__(self, interval, tick, name=None):
        if interval <= 0:
            raise ValueError(interval)
        super().__init__(name=name, daemon=True)
        self.interval, self.tick = interval, tick
        self._stopping = threading.Event()

    def run(self):
        _loop(self.interval, self.tick, self._stopping)

    def stop(self):
        self._stopping.set()


def start_clock(interval, tick, daemon=True, stop=None):
    if interval <= 0:
        raise ValueError(interval)
    thread = threading.Thread(target=_loop, args=(interval, tick, stop or threading.Event()), daemon=daemon)
    thread.start()
    return thread
