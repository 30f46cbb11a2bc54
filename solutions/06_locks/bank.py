"""Bank accounts guarded by re-entrant locks, and transfers that never deadlock."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable

# Every account gets a number once: the one global order in which locks are taken.
_account_numbers = itertools.count()


class InsufficientFunds(Exception):
    """A withdrawal or transfer of more than the balance."""


def _check_amount(amount: int | float) -> None:
    if amount <= 0:
        raise ValueError(f"the amount must be positive, got {amount}")


class Account:
    """A balance that many threads may change at once.

    >>> account = Account(100)
    >>> account.deposit(20); account.withdraw(50)
    >>> account.balance
    70
    """

    def __init__(self, balance: int | float = 0) -> None:
        if balance < 0:
            raise ValueError(f"an account cannot open with a negative balance ({balance})")
        self._balance = balance
        # Re-entrant: a transfer holds this lock and then calls withdraw(), which takes it again.
        self.lock = threading.RLock()
        self.number = next(_account_numbers)

    @property
    def balance(self) -> int | float:
        with self.lock:
            return self._balance

    def deposit(self, amount: int | float) -> None:
        _check_amount(amount)
        with self.lock:
            self._balance += amount

    def withdraw(self, amount: int | float) -> None:
        _check_amount(amount)
        with self.lock:  # the check and the change are one step
            if amount > self._balance:
                raise InsufficientFunds(f"cannot withdraw {amount}: the balance is {self._balance}")
            self._balance -= amount


class Bank:
    """Moves money between accounts; every transfer is all or nothing.

    >>> a, b = Account(100), Account()
    >>> Bank().transfer(a, b, 30)
    >>> a.balance, b.balance
    (70, 30)
    """

    def transfer(self, src: Account, dst: Account, amount: int | float) -> None:
        _check_amount(amount)
        if src is dst:
            raise ValueError("cannot transfer from an account to itself")
        # Always lock the lower-numbered account first, whatever the direction:
        # two opposite transfers then never hold one lock each and wait for the other.
        first, second = sorted((src, dst), key=lambda account: account.number)
        with first.lock, second.lock:
            src.withdraw(amount)  # raises before anything changed if the money is not there
            dst.deposit(amount)

    def total(self, accounts: Iterable[Account]) -> int | float:
        """The sum of the balances at one instant: no transfer is half done."""
        ordered = sorted(set(accounts), key=lambda account: account.number)
        held = []
        try:
            for account in ordered:
                account.lock.acquire()
                held.append(account)
            return sum(account._balance for account in ordered)
        finally:
            for account in reversed(held):
                account.lock.release()
