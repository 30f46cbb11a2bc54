"""Exercise 01: a clock thread. Read README.md in this folder first."""

from __future__ import annotations

import threading
from collections.abc import Callable

_README = "exercises/01_thread_basics/README.md"


class ClockThread(threading.Thread):
    """A daemon thread that calls ``tick(n)`` every ``interval`` seconds until ``stop()``."""

    def __init__(
        self, interval: float, tick: Callable[[int], object], name: str | None = None
    ) -> None:
        raise NotImplementedError(f"ClockThread.__init__: write it (see {_README})")

    def run(self) -> None:
        raise NotImplementedError(f"ClockThread.run: write it (see {_README})")

    def stop(self) -> None:
        raise NotImplementedError(f"ClockThread.stop: write it (see {_README})")


def start_clock(
    interval: float,
    tick: Callable[[int], object],
    daemon: bool = True,
    stop: threading.Event | None = None,
) -> threading.Thread:
    """Start a plain ``Thread(target=...)`` that ticks until ``stop`` is set; return it."""
    raise NotImplementedError(f"start_clock: write it (see {_README})")
