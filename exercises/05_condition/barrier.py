"""Exercise 05: a barrier and a watched value. Read README.md in this folder first.

Build both on ``threading.Condition``; ``threading.Barrier`` is not allowed.
"""

from __future__ import annotations

import threading  # noqa: F401  (you will need it)
from collections.abc import Callable
from typing import Any

_README = "exercises/05_condition/README.md"


class Barrier:
    def __init__(self, parties: int) -> None:
        raise NotImplementedError(f"Barrier.__init__: write it (see {_README})")

    def wait(self, timeout: float | None = None) -> int:
        raise NotImplementedError(f"Barrier.wait: write it (see {_README})")


class ValueWatch:
    def __init__(self, initial: Any) -> None:
        raise NotImplementedError(f"ValueWatch.__init__: write it (see {_README})")

    @property
    def value(self) -> Any:
        raise NotImplementedError(f"ValueWatch.value: write it (see {_README})")

    def set(self, value: Any) -> None:
        raise NotImplementedError(f"ValueWatch.set: write it (see {_README})")

    def wait_until(self, predicate: Callable[[Any], bool], timeout: float | None = None) -> Any:
        raise NotImplementedError(f"ValueWatch.wait_until: write it (see {_README})")
