"""Sleeps between ticks with time.sleep: stop() has to wait for the sleep to end."""

import threading
import time

CAUGHT_BY = [
    "test_stop_ends_the_clock_promptly_not_after_a_full_interval",
    "test_start_clock_stops_promptly_when_the_event_is_set",
]


def _loop(interval, tick, stopped):
    n = 0
    while not stopped.is_set():
        tick(n)
        n += 1
        time.sleep(interval)


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
