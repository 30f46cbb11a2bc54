"""total() adds the balances one by one without holding every lock: it can see half a transfer."""

import itertools
import threading

CAUGHT_BY = ["test_total_is_a_consistent_snapshot_during_transfers"]
_numbers = itertools.count()


class InsufficientFunds(Exception):
    pass


def _check(amount):
    if amount <= 0:
        raise ValueError(amount)


class Account:
    def __init__(self, balance=0):
        if balance < 0:
            raise ValueError(balance)
        self._balance = balance
        self.lock = threading.RLock()
        self.number = next(_numbers)

    @property
    def balance(self):
        with self.lock:
            return self._balance

    def deposit(self, amount):
        _check(amount)
        with self.lock:
            self._balance += amount

    def withdraw(self, amount):
        _check(amount)
        with self.lock:
            if amount > self._balance:
                raise InsufficientFunds(amount)
            self._balance -= amount


class Bank:
    def transfer(self, src, dst, amount):
        _check(amount)
        if src is dst:
            raise ValueError("same account")
        first, second = sorted((src, dst), key=lambda account: account.number)
        with first.lock, second.lock:
            src.withdraw(amount)
            dst.deposit(amount)

    def total(self, accounts):
        return sum(account.balance for account in accounts)
