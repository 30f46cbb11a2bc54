"""Exercise 15: greenlets, coroutines that you switch by hand. Read README.md in this folder first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from greenlet import greenlet  # noqa: F401  (you will need it)

_README = "exercises/15_greenlet/README.md"


def ping_pong(n: int) -> list[str]:
    raise NotImplementedError(f"ping_pong: write it (see {_README})")


class RoundRobin:
    def __init__(self) -> None:
        raise NotImplementedError(f"RoundRobin.__init__: write it (see {_README})")

    def spawn(self, fn: Callable[..., Any], *args: Any) -> int:
        raise NotImplementedError(f"RoundRobin.spawn: write it (see {_README})")

    def pause(self) -> None:
        raise NotImplementedError(f"RoundRobin.pause: write it (see {_README})")

    def run(self) -> list[int]:
        raise NotImplementedError(f"RoundRobin.run: write it (see {_README})")
