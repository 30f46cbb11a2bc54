"""A window deep in a long loop: one unlocked `total += 1` at iteration 27 of 40."""

import threading

CARELESS_AT = 27


class Tally:
    def __init__(self) -> None:
        self.total = 0
        self.lock = threading.Lock()

    def add_many(self, careless_at: int | None) -> None:
        for i in range(40):
            if i == careless_at:
                self.total += 1  # the one increment that forgot the lock
            else:
                with self.lock:
                    self.total += 1

    def add_one(self) -> None:
        with self.lock:
            self.total += 1


def _scenario(schedule, careless_at: int | None) -> None:
    tally = Tally()
    schedule.run(lambda: tally.add_many(careless_at), tally.add_one)
    assert tally.total == 41, f"lost update: total = {tally.total} after 41 increments"


def buggy(schedule) -> None:
    _scenario(schedule, CARELESS_AT)


def fixed(schedule) -> None:
    _scenario(schedule, None)
