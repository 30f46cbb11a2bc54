"""A counter seen going down: two preemptions among three threads (T1 incr, T2 incr twice, T3 reads twice)."""

import threading


class Counter:
    def __init__(self, locked: bool) -> None:
        self.n = 0
        self.locked = locked
        self.lock = threading.Lock()

    def incr(self) -> None:
        if self.locked:
            with self.lock:
                self.n += 1
        else:
            self.n += 1


def _scenario(schedule, locked: bool) -> None:
    counter = Counter(locked)

    def twice() -> None:
        counter.incr()
        counter.incr()

    def observe() -> tuple[int, int]:
        first = counter.n
        second = counter.n
        return first, second

    _, _, (first, second) = schedule.run(counter.incr, twice, observe)
    assert second >= first, f"the counter went down: read {first}, then {second}"


def buggy(schedule) -> None:
    _scenario(schedule, locked=False)


def fixed(schedule) -> None:
    _scenario(schedule, locked=True)
