"""run() releases the slot only when fn returns: an exception leaks the slot for ever."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

CAUGHT_BY = ["test_an_exception_gives_the_slot_back"]


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")


class ConcurrencyLimiter:
    """Lets at most ``limit`` threads in at once; ``active`` says how many are in."""

    def __init__(self, limit: int) -> None:
        _check_limit(limit)
        self.limit = limit
        # Bounded: a release without an acquire is a ValueError, not one more slot.
        self._slots = threading.BoundedSemaphore(limit)
        self._count_lock = threading.Lock()
        self._active = 0

    @property
    def active(self) -> int:
        """How many threads are inside right now."""
        return self._active

    def __enter__(self) -> ConcurrencyLimiter:
        self._slots.acquire()
        with self._count_lock:
            self._active += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._count_lock:
            if self._active == 0:
                raise ValueError("the limiter was left more often than it was entered")
            self._active -= 1
        self._slots.release()

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` inside the limit; the slot is given back even if ``fn`` raises."""
        self.__enter__()
        result = fn(*args)
        self.__exit__(None, None, None)
        return result


def run_limited(tasks: Iterable[Callable[[], Any]], limit: int) -> list[Any]:
    """Run every task in its own thread, at most ``limit`` at once; results in task order.

    If tasks raise, the exception of the first failing task (in task order) is
    raised, after every task has finished.
    """
    limiter = ConcurrencyLimiter(limit)
    tasks = list(tasks)
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException | None] = [None] * len(tasks)

    def work(index: int, task: Callable[[], Any]) -> None:
        try:
            results[index] = limiter.run(task)
        except BaseException as error:  # handed to the caller below
            errors[index] = error

    threads = [
        threading.Thread(target=work, args=(i, task), name=f"run_limited-{i}")
        for i, task in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results
