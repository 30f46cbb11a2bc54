"""A four-way deadlock: four threads each take lock i then lock i+1; three preemptions close the cycle."""

import threading


def _scenario(schedule, ordered: bool) -> None:
    locks = [threading.Lock() for _ in range(4)]
    done = []

    def worker(i: int):
        first, second = i, (i + 1) % 4
        if ordered:
            first, second = min(first, second), max(first, second)

        def work() -> None:
            with locks[first], locks[second]:
                done.append(i)

        return work

    schedule.run(*(worker(i) for i in range(4)))
    assert sorted(done) == [0, 1, 2, 3]


def buggy(schedule) -> None:
    _scenario(schedule, ordered=False)


def fixed(schedule) -> None:
    _scenario(schedule, ordered=True)
