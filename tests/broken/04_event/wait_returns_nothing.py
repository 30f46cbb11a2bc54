"""wait() waits but forgets to return the Event's answer: callers get None."""

from __future__ import annotations

import threading

CAUGHT_BY = [
    "test_a_closed_gate_keeps_waiters_out_until_the_timeout",
    "test_an_open_gate_lets_everyone_through_at_once",
    "test_latch_wait_times_out_with_false",
]


class StartingGate:
    """Threads wait at the gate until someone opens it; once open it stays open."""

    def __init__(self) -> None:
        self._opened = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the gate is open (True) or ``timeout`` seconds passed (False)."""
        self._opened.wait(timeout)

    def open(self) -> None:
        """Open the gate: every waiting thread goes, and later ones do not wait."""
        self._opened.set()

    @property
    def is_open(self) -> bool:
        return self._opened.is_set()


class CountDownLatch:
    """Opens once ``count_down()`` has been called ``count`` times."""

    def __init__(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"count must not be negative, got {count!r}")
        self._count = count
        # The Event alone cannot count: "decrement, then open at zero" must be
        # one step, or two racing count_down() calls lose one of them.
        self._lock = threading.Lock()
        self._zero = threading.Event()
        if count == 0:
            self._zero.set()

    @property
    def count(self) -> int:
        """How many ``count_down()`` calls are still missing (never negative)."""
        return self._count

    def count_down(self) -> None:
        with self._lock:
            if self._count == 0:
                return
            self._count -= 1
            if self._count == 0:
                self._zero.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the count is 0 (True) or ``timeout`` seconds passed (False)."""
        self._zero.wait(timeout)
