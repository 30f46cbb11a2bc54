"""Returns without join(): the results are collected while workers are still handling items."""

import itertools
import queue
import threading

CAUGHT_BY = ["test_process_all_returns_only_after_every_item_was_handled"]


def process_all(items, handler, n_workers):
    if n_workers < 1:
        raise ValueError(n_workers)
    tasks = queue.Queue()
    results, errors = {}, []

    def work():
        while True:
            item = tasks.get()
            try:
                if item is None:
                    return
                results[item] = handler(item)
            except Exception as error:
                errors.append(error)
            finally:
                tasks.task_done()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(n_workers)]
    for worker in workers:
        worker.start()
    for item in items:
        tasks.put(item)
    for _ in workers:
        tasks.put(None)  # stop pills behind the items, but nobody waits for them
    if errors:
        raise errors[0]
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
