"""Exercise 08: queues, task_done/join, and a priority scheduler. Read README.md in this folder first.

Use the ``queue`` module: ``queue.Queue``, ``queue.LifoQueue``, ``queue.PriorityQueue``.
"""

from __future__ import annotations

import queue  # noqa: F401  (you will need it)
import threading  # noqa: F401  (you will need it)
from collections.abc import Callable, Hashable, Iterable
from typing import Any

_README = "exercises/08_queues/README.md"


def fifo_order(items: Iterable[Any]) -> list:
    raise NotImplementedError(f"fifo_order: write it (see {_README})")


def lifo_order(items: Iterable[Any]) -> list:
    raise NotImplementedError(f"lifo_order: write it (see {_README})")


def priority_order(pairs: Iterable[tuple[Any, Any]]) -> list:
    raise NotImplementedError(f"priority_order: write it (see {_README})")


def process_all(
    items: Iterable[Hashable], handler: Callable[[Any], Any], n_workers: int
) -> dict:
    raise NotImplementedError(f"process_all: write it (see {_README})")


class PriorityScheduler:
    def __init__(self) -> None:
        raise NotImplementedError(f"PriorityScheduler.__init__: write it (see {_README})")

    def submit(self, priority: Any, item: Any) -> None:
        raise NotImplementedError(f"PriorityScheduler.submit: write it (see {_README})")

    def next(self, timeout: float | None = None) -> Any:
        raise NotImplementedError(f"PriorityScheduler.next: write it (see {_README})")

    def __len__(self) -> int:
        raise NotImplementedError(f"PriorityScheduler.__len__: write it (see {_README})")
