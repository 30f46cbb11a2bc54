"""Torn read: an auditor sums two balances while a transfer is half done."""

import threading


class Bank:
    def __init__(self):
        self.a = 100
        self.b = 100
        self.lock = threading.Lock()

    def transfer(self, amount):
        with self.lock:
            self.a -= amount
            self.b += amount

    def total(self):
        return self.a + self.b

    def safe_total(self):
        with self.lock:
            return self.a + self.b


def buggy(schedule):
    bank = Bank()
    _, seen = schedule.run(lambda: bank.transfer(30), bank.total)
    assert seen == 200, f"the auditor saw a total of {seen}"


def fixed(schedule):
    bank = Bank()
    _, seen = schedule.run(lambda: bank.transfer(30), bank.safe_total)
    assert seen == 200, f"the auditor saw a total of {seen}"
