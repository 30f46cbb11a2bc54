"""Exercise 04: a starting gate and a count-down latch. Read README.md in this folder first."""

from __future__ import annotations

_README = "exercises/04_event/README.md"


class StartingGate:
    """Threads wait at the gate until someone opens it; once open it stays open."""

    def __init__(self) -> None:
        raise NotImplementedError(f"StartingGate.__init__: write it (see {_README})")

    def wait(self, timeout: float | None = None) -> bool:
        raise NotImplementedError(f"StartingGate.wait: write it (see {_README})")

    def open(self) -> None:
        raise NotImplementedError(f"StartingGate.open: write it (see {_README})")

    @property
    def is_open(self) -> bool:
        raise NotImplementedError(f"StartingGate.is_open: write it (see {_README})")


class CountDownLatch:
    """Opens once ``count_down()`` has been called ``count`` times."""

    def __init__(self, count: int) -> None:
        raise NotImplementedError(f"CountDownLatch.__init__: write it (see {_README})")

    @property
    def count(self) -> int:
        raise NotImplementedError(f"CountDownLatch.count: write it (see {_README})")

    def count_down(self) -> None:
        raise NotImplementedError(f"CountDownLatch.count_down: write it (see {_README})")

    def wait(self, timeout: float | None = None) -> bool:
        raise NotImplementedError(f"CountDownLatch.wait: write it (see {_README})")
