"""Locks taken source first, then destination: two opposite transfers wait for each other for ever."""

import itertools
import threading

CAUGHT_BY = ["test_opposite_transfers_never_deadlock"]
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
        first, second = src, dst
        with first.lock, second.lock:
            src.withdraw(amount)
            dst.deposit(amount)

    def total(self, accounts):
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
