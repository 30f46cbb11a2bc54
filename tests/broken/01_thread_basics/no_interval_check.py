"""Never checks the interval: a clock with interval 0 spins as fast as it can."""

import threading

CAUGHT_BY = ["test_clock_thread_interval_must_be_positive", "test_start_clock_interval_must_be_positive"]


def _loop(interval, tick, stopped):
    n = 0
    while not stopped.is_set():
        tick(n)
        n += 1
        if stopped.wait(interval):
            return


class ClockThread(threading.Thread):
    def __init__(self, interval, tick, name=None):
        super().__init__(name=name, daemon=True)
        self.interval, self.tick = interval, tick
        self._stopping = threading.Event()

    def run(self):
        _loop(self.interval, self.tick, self._stopping)

    def stop(self):
        self._stopping.set()


def start_clock(interval, tick, daemon=True, stop=None):
    thread = threading.Thread(target=_loop, args=(interval, tick, stop or threading.Event()), daemon=daemon)
    thread.start()
    return thread
