"""ABBA deadlock: two transfers in opposite directions lock the accounts in opposite orders."""

import threading


class Account:
    def __init__(self, number, balance):
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()


def transfer(src, dst, amount):
    with src.lock, dst.lock:
        src.balance -= amount
        dst.balance += amount


def ordered_transfer(src, dst, amount):
    first, second = sorted((src, dst), key=lambda account: account.number)
    with first.lock, second.lock:
        src.balance -= amount
        dst.balance += amount


def _scenario(schedule, move):
    a, b = Account(1, 100), Account(2, 100)
    schedule.run(lambda: move(a, b, 10), lambda: move(b, a, 20))
    assert a.balance + b.balance == 200


def buggy(schedule):
    _scenario(schedule, transfer)


def fixed(schedule):
    _scenario(schedule, ordered_transfer)
