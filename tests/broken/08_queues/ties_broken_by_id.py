"""Ties are broken by id(item): items are never compared, but equal priorities come out in any order."""

import queue
import threading

CAUGHT_BY = ["test_scheduler_is_first_come_first_served_among_equal_priorities"]


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

    workers = [threading.Thread(target=work) for _ in range(n_workers)]
    for worker in workers:
        worker.start()
    for item in items:
        tasks.put(item)
    tasks.join()
    for _ in workers:
        tasks.put(None)
    for worker in workers:
        worker.join()
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
    for priority, item in pairs:
        q.put((priority, id(item), item))
    return [q.get()[2] for _ in range(q.qsize())]


class PriorityScheduler:
    def __init__(self):
        self._queue = queue.PriorityQueue()

    def submit(self, priority, item):
        self._queue.put((priority, id(item), item))

    def next(self, timeout=None):
        return self._queue.get(timeout=timeout)[2]

    def __len__(self):
        return self._queue.qsize()
