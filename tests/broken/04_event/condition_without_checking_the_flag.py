"""The gate waits on a Condition without checking whether it is already open: a wakeup sent before the wait is lost."""

from __future__ import annotations

import threading

CAUGHT_BY = ["test_no_runner_starts_before_the_gun_and_no_wakeup_is_lost"]


class StartingGate:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._open = False

    def wait(self, timeout: float | None = None) -> bool:
        with self._changed:
            self._changed.wait(timeout)  # should be: wait_for(lambda: self._open, timeout)
            return self._open

    def open(self) -> None:
        with self._changed:
            self._open = True
            self._changed.notify_all()

    @property
    def is_open(self) -> bool:
        return self._open


class CountDownLatch:
    def __init__(self, count: int) -> None:
        if count < 0:
            raise ValueError(count)
        self._count = count
        self._lock = threading.Lock()
        self._zero = threading.Event()
        if count == 0:
            self._zero.set()

    @property
    def count(self) -> int:
        return self._count

    def count_down(self) -> None:
        with self._lock:
            if self._count == 0:
                return
            self._count -= 1
            if self._count == 0:
                self._zero.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._zero.wait(timeout)
