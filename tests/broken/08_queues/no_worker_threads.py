"""The handler runs in the calling thread, one item after the other: no workers at all."""

import itertools
import queue
import threading  # noqa: F401

CAUGHT_BY = [
    "test_process_all_runs_n_workers_handlers_at_the_same_time",
    "test_process_all_uses_n_worker_threads_again_and_again",
]


def process_all(items, handler, n_workers):
    if n_workers < 1:
        raise ValueError(n_workers)
    tasks = queue.Queue()
    for item in items:
        tasks.put(item)
    results = {}
    while not tasks.empty():
        item = tasks.get()
        results[item] = handler(item)
        tasks.task_done()
    tasks.join()
    return results


def fifo_order(items):
    q = queue.Queue()
    for item in items:
        q.put(item)
    return [q.get() for _ in range(q.qsize())]


def lifo_order(items):
    q = queue.LifoQueue()
    for item in items:
        q.put(item)
    return [q.get() for _ in range(q.qsize())]


def priority_order(pairs):
    q = queue.PriorityQueue()
    for n, (priority, item) in enumerate(pairs):
        q.put((priority, n, item))
    return [q.get()[2] for _ in range(q.qsize())]


class PriorityScheduler:
    def __init__(self):
        self._queue = queue.PriorityQueue()
        self._sequence = itertools.count()

    def submit(self, priority, item):
        self._queue.put((priority, next(self._sequence), item))

    def next(self, timeout=None):
        return self._queue.get(timeout=timeout)[2]

    def __len__(self):
        return self._queue.qsize()
