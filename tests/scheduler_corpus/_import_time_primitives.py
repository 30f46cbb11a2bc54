"""Code under test whose Event, Semaphore, Condition, Barrier and Queue are made at import time.

Not a corpus entry (its name starts with ``_``): tests/test_scheduler.py
imports it before any patch is in, so these are built on the interpreter's
own locks.  Each scenario is correct except ``unguarded_add``.
"""

from __future__ import annotations

import queue
import threading

READY = threading.Event()
SLOTS = threading.BoundedSemaphore(1)
ITEMS_LOCK = threading.Lock()
ITEMS_CHANGED = threading.Condition(ITEMS_LOCK)
MEETING = threading.Barrier(2)
JOBS: queue.Queue[int] = queue.Queue(maxsize=1)
TWO_AT_A_TIME = threading.Semaphore(2)

shared: dict[str, int] = {}
items: list[int] = []


def publish() -> None:
    shared["answer"] = 42
    READY.set()


def read_when_ready() -> int:
    READY.wait()
    return shared["answer"]


def add_under_semaphore() -> None:
    with SLOTS:
        seen = shared.get("total", 0)
        shared["total"] = seen + 1


def unguarded_add() -> None:
    with TWO_AT_A_TIME:  # two threads at a time: no mutual exclusion for two
        seen = shared.get("total", 0)
        shared["total"] = seen + 1


def put_item() -> None:
    with ITEMS_CHANGED:
        items.append(1)
        ITEMS_CHANGED.notify()


def take_item() -> int:
    with ITEMS_CHANGED:
        while not items:
            ITEMS_CHANGED.wait()
        return items.pop()


def meet() -> int:
    return MEETING.wait()


def produce() -> None:
    for job in range(3):
        JOBS.put(job)


def consume() -> list[int]:
    return [JOBS.get() for _ in range(3)]
