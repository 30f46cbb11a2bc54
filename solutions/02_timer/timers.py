"""Calls that happen later: ``call_later`` and a thread-safe ``Debouncer``.

>>> saved = []
>>> save = Debouncer(0.5, saved.append)
>>> for text in ["h", "he", "hello"]:   # typed quickly
...     save(text)
>>> save.flush()                        # or wait half a second
>>> saved
['hello']
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def call_later(
    delay: float, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> threading.Timer:
    """Start and return a ``threading.Timer`` that calls ``fn(*args, **kwargs)`` in ``delay`` s."""
    if delay < 0:
        raise ValueError(f"delay must not be negative, got {delay!r}")
    timer = threading.Timer(delay, fn, args, kwargs)
    timer.start()
    return timer


class Debouncer:
    """Runs ``fn`` once, ``wait`` seconds after the last of a burst of calls, with its arguments."""

    def __init__(self, wait: float, fn: Callable[..., Any]) -> None:
        if wait < 0:
            raise ValueError(f"wait must not be negative, got {wait!r}")
        self.wait = wait
        self.fn = fn
        self._lock = threading.Lock()
        self._pending: tuple[tuple, dict] | None = None
        # Bumped whenever the pending call changes hands: a timer that fires
        # with an old number lost the race to a newer call, flush() or cancel().
        self._generation = 0
        self._timers: list[threading.Timer] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self._generation += 1
            self._pending = (args, kwargs)
            for old in self._timers:
                old.cancel()
            self._timers = [t for t in self._timers if t.is_alive()]
            timer = threading.Timer(self.wait, self._fire, (self._generation,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def flush(self) -> None:
        """Run the pending call now, in this thread; do nothing if there is none."""
        pending = self._drop_pending()
        if pending is not None:
            args, kwargs = pending
            self.fn(*args, **kwargs)

    def cancel(self) -> None:
        """Drop the pending call, if any."""
        self._drop_pending()

    def _drop_pending(self) -> tuple[tuple, dict] | None:
        with self._lock:
            self._generation += 1
            pending, self._pending = self._pending, None
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
            if timer is not threading.current_thread():  # fn may call flush() itself
                timer.join()
        return pending

    def _fire(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or self._pending is None:
                return  # a later call, flush() or cancel() took over
            args, kwargs = self._pending
            self._pending = None
        self.fn(*args, **kwargs)
