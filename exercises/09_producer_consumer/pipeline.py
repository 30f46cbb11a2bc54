"""Exercise 09: producer-consumer through a bounded buffer. Read README.md in this folder first.

Build ``BoundedBuffer`` on ``threading.Condition`` (not ``queue.Queue``);
it raises ``queue.Full`` and ``queue.Empty`` on timeouts.
"""

from __future__ import annotations

import queue  # noqa: F401  (for queue.Full and queue.Empty)
import threading  # noqa: F401  (you will need it)
from collections.abc import Callable, Iterable
from typing import Any

_README = "exercises/09_producer_consumer/README.md"


class BoundedBuffer:
    def __init__(self, capacity: int) -> None:
        raise NotImplementedError(f"BoundedBuffer.__init__: write it (see {_README})")

    def put(self, item: Any, timeout: float | None = None) -> None:
        raise NotImplementedError(f"BoundedBuffer.put: write it (see {_README})")

    def get(self, timeout: float | None = None) -> Any:
        raise NotImplementedError(f"BoundedBuffer.get: write it (see {_README})")

    def __len__(self) -> int:
        raise NotImplementedError(f"BoundedBuffer.__len__: write it (see {_README})")


def run_pipeline(
    sources: Iterable[Iterable[Any]],
    work: Callable[[Any], Any],
    n_consumers: int,
    capacity: int,
) -> list:
    raise NotImplementedError(f"run_pipeline: write it (see {_README})")
