"""Atomicity violation: balance check and withdrawal are each locked, not together."""

import threading


class Account:
    def __init__(self, balance):
        self.balance = balance
        self.lock = threading.Lock()

    def _balance(self):
        with self.lock:
            return self.balance

    def _take(self, amount):
        with self.lock:
            self.balance -= amount

    def withdraw(self, amount):
        if self._balance() >= amount:
            self._take(amount)
            return True
        return False

    def safe_withdraw(self, amount):
        with self.lock:
            if self.balance >= amount:
                self.balance -= amount
                return True
            return False


def buggy(schedule):
    account = Account(100)
    schedule.run(lambda: account.withdraw(80), lambda: account.withdraw(80))
    assert account.balance >= 0, f"overdrawn: balance {account.balance}"


def fixed(schedule):
    account = Account(100)
    schedule.run(lambda: account.safe_withdraw(80), lambda: account.safe_withdraw(80))
    assert account.balance >= 0, f"overdrawn: balance {account.balance}"
