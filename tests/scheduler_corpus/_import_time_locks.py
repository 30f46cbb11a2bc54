"""Code under test whose locks are made at import time, as students write them.

Not a corpus entry (its name starts with ``_``): tests/test_scheduler.py
imports it before any patch is in, so these are the interpreter's own locks.
"""

from __future__ import annotations

import threading

LOCK = threading.Lock()
FIRST = threading.Lock()
SECOND = threading.Lock()

total = 0


def add_one() -> None:
    global total
    with LOCK:
        seen = total
        total = seen + 1


def first_then_second() -> None:
    with FIRST, SECOND:
        pass


def second_then_first() -> None:
    with SECOND, FIRST:
        pass


class Account:
    lock = threading.RLock()  # one lock for every account, made with the class

    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, amount: int) -> None:
        with self.lock, self.lock:  # re-entered: an RLock
            self.balance += amount
