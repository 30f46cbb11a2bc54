"""Exercise 03: a concurrency limiter on a semaphore. Read README.md in this folder first."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_README = "exercises/03_semaphore/README.md"


class ConcurrencyLimiter:
    """Lets at most ``limit`` threads in at once; ``active`` says how many are in."""

    def __init__(self, limit: int) -> None:
        raise NotImplementedError(f"ConcurrencyLimiter.__init__: write it (see {_README})")

    @property
    def active(self) -> int:
        raise NotImplementedError(f"ConcurrencyLimiter.active: write it (see {_README})")

    def __enter__(self) -> ConcurrencyLimiter:
        raise NotImplementedError(f"ConcurrencyLimiter.__enter__: write it (see {_README})")

    def __exit__(self, *exc_info: object) -> None:
        raise NotImplementedError(f"ConcurrencyLimiter.__exit__: write it (see {_README})")

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError(f"ConcurrencyLimiter.run: write it (see {_README})")


def run_limited(tasks: Iterable[Callable[[], Any]], limit: int) -> list[Any]:
    """Run every task in its own thread, at most ``limit`` at once; results in task order."""
    raise NotImplementedError(f"run_limited: write it (see {_README})")
