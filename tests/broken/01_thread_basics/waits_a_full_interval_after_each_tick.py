"""Waits a full interval after each tick, as the course does: a slow tick makes the clock drift."""

import threading

CAUGHT_BY = ["test_a_slow_tick_does_not_make_the_clock_drift"]


def _loop(interval, tick, stopped):
    n = 0
    while not stopped.is_set():
        tick(n)
        n += 1
        if stopped.wait(interval):
            return


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
