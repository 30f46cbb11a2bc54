"""task_done() is skipped when the handler raises: join() then waits for that item forever."""

import itertools
import queue
import threading

CAUGHT_BY = ["test_an_exception_in_the_handler_is_raised_after_every_other_item_was_handled"]


def process_all(items, handler, n_workers):
    if n_workers < 1:
        raise ValueError(n_workers)
    tasks = queue.Queue()
    results, errors = {}, []

    def work():
        while True:
            item = tasks.get()
            if item is None:
                tasks.task_done()
                return
            try:
                results[item] = handler(item)
            except Exception as error:
                errors.append(error)
                continue  # forgets task_done() for this item
            tasks.task_done()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(n_workers)]
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
