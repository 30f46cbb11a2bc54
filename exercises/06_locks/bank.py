"""Exercise 06: bank accounts, Lock and RLock. Read README.md in this folder first."""

from __future__ import annotations

import threading  # noqa: F401  (you will need it)
from collections.abc import Iterable

_README = "exercises/06_locks/README.md"


class InsufficientFunds(Exception):
    """A withdrawal or transfer of more than the balance."""


class Account:
    def __init__(self, balance: int | float = 0) -> None:
        raise NotImplementedError(f"Account.__init__: write it (see {_README})")

    @property
    def balance(self) -> int | float:
        raise NotImplementedError(f"Account.balance: write it (see {_README})")

    def deposit(self, amount: int | float) -> None:
        raise NotImplementedError(f"Account.deposit: write it (see {_README})")

    def withdraw(self, amount: int | float) -> None:
        raise NotImplementedError(f"Account.withdraw: write it (see {_README})")


class Bank:
    def transfer(self, src: Account, dst: Account, amount: int | float) -> None:
        raise NotImplementedError(f"Bank.transfer: write it (see {_README})")

    def total(self, accounts: Iterable[Account]) -> int | float:
        raise NotImplementedError(f"Bank.total: write it (see {_README})")
