"""Dining philosophers: three threads, three forks, a three-way deadlock cycle."""

import threading


def _scenario(schedule, ordered):
    forks = [threading.Lock() for _ in range(3)]
    meals = []

    def philosopher(i):
        left, right = forks[i], forks[(i + 1) % 3]
        if ordered and i == 2:  # the last one picks up the lower-numbered fork first
            left, right = right, left

        def dine():
            with left, right:
                meals.append(i)

        return dine

    schedule.run(philosopher(0), philosopher(1), philosopher(2))
    assert sorted(meals) == [0, 1, 2]


def buggy(schedule):
    _scenario(schedule, ordered=False)


def fixed(schedule):
    _scenario(schedule, ordered=True)
