"""A clock that calls ``tick(n)`` every ``interval`` seconds until it is stopped.

>>> import threading
>>> seen = []
>>> clock = ClockThread(0.01, seen.append)
>>> clock.start()
>>> # ... later:
>>> clock.stop(); clock.join()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Tick = Callable[[int], object]


def _check_interval(interval: float) -> None:
    if interval <= 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")


def _tick_until_stopped(interval: float, tick: Tick, stop: threading.Event) -> None:
    """Call tick(0), tick(1), ... at start, start + interval, ... until ``stop`` is set."""
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        tick(n)
        n += 1
        # Aim at the n-th deadline rather than "interval from now": a slow tick
        # must not push every later tick back (the course's clock drifts).
        delay = max(0.0, start + n * interval - time.monotonic())
        # wait(), unlike sleep(), returns as soon as stop() is called.
        if stop.wait(delay):
            return


class ClockThread(threading.Thread):
    """A daemon thread that calls ``tick(n)`` every ``interval`` seconds until ``stop()``."""

    def __init__(self, interval: float, tick: Tick, name: str | None = None) -> None:
        _check_interval(interval)
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.tick = tick
        # Not "self._stop": threading.Thread uses that name itself (3.10-3.12).
        self._stopping = threading.Event()

    def run(self) -> None:
        _tick_until_stopped(self.interval, self.tick, self._stopping)

    def stop(self) -> None:
        """Ask the clock to end; it does so promptly. Safe to call from ``tick`` itself."""
        self._stopping.set()


def start_clock(
    interval: float, tick: Tick, daemon: bool = True, stop: threading.Event | None = None
) -> threading.Thread:
    """Start a plain ``Thread(target=...)`` that ticks until ``stop`` is set; return it."""
    _check_interval(interval)
    if stop is None:
        stop = threading.Event()  # nobody can set it: the clock runs as long as the program
    thread = threading.Thread(
        target=_tick_until_stopped, args=(interval, tick, stop), name="clock", daemon=daemon
    )
    thread.start()
    return thread
