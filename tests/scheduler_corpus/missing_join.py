"""A result read before the worker thread finished: no join."""

import threading


def compute(join):
    result = []

    def work():
        result.append(sum(range(5)))

    worker = threading.Thread(target=work)
    worker.start()
    if join:
        worker.join()
    assert result == [10], f"read the result too early: {result}"


def buggy(schedule):
    schedule.run(lambda: compute(join=False))


def fixed(schedule):
    schedule.run(lambda: compute(join=True))
