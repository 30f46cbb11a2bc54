"""Opens the latch when the count reaches 1 instead of 0."""

from __future__ import annotations

import threading

CAUGHT_BY = [
    "test_the_latch_opens_exactly_at_zero",
    "test_racing_count_downs_open_the_latch_exactly_once_at_zero",
]


class StartingGate:
    """Threads wait at the gate until someone opens it; once open it stays open."""

    def __init__(self) -> None:
        self._opened = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the gate is open (True) or ``timeout`` seconds passed (False)."""
        return self._opened.wait(timeout)

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
            if self._count <= 1:
                self._zero.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the count is 0 (True) or ``timeout`` seconds passed (False)."""
        return self._zero.wait(timeout)
