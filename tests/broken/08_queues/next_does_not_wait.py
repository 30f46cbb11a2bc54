"""next() on an empty scheduler returns None at once instead of waiting for a submit."""

import heapq
import itertools
import queue
import threading

CAUGHT_BY = [
    "test_scheduler_next_raises_queue_empty_after_the_timeout",
    "test_a_waiting_next_wakes_when_another_thread_submits",
    "test_next_and_submit_at_the_same_time_lose_no_wakeup",
]


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
    for n, (priority, item) in enumerate(pairs):
        q.put((priority, n, item))
    return [q.get()[2] for _ in range(q.qsize())]


class PriorityScheduler:
    def __init__(self):
        self._heap = []
        self._lock = threading.Lock()
        self._sequence = itertools.count()

    def submit(self, priority, item):
        with self._lock:
            heapq.heappush(self._heap, (priority, next(self._sequence), item))

    def next(self, timeout=None):
        with self._lock:
            if not self._heap:
                return None
            return heapq.heappop(self._heap)[2]

    def __len__(self):
        return len(self._heap)
