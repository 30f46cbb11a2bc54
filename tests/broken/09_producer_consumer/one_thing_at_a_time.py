"""The producers and consumers are started and joined one at a time: nothing runs concurrently."""

import queue
import threading
from collections import deque

CAUGHT_BY = [
    "test_one_producer_thread_per_source_all_at_once",
    "test_n_consumers_do_the_work_at_the_same_time",
]


class BoundedBuffer:
    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError(capacity)
        self.capacity = capacity
        self._items = deque()
        lock = threading.Lock()
        self._not_full = threading.Condition(lock)
        self._not_empty = threading.Condition(lock)

    def put(self, item, timeout=None):
        with self._not_full:
            if not self._not_full.wait_for(lambda: len(self._items) < self.capacity, timeout):
                raise queue.Full
            self._items.append(item)
            self._not_empty.notify()

    def get(self, timeout=None):
        with self._not_empty:
            if not self._not_empty.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def __len__(self):
        with self._not_full:
            return len(self._items)


def run_pipeline(sources, work, n_consumers, capacity):
    buffer = BoundedBuffer(capacity)
    results = []

    def produce(source):
        for item in source:
            buffer.put(item)

    def consume():
        while True:
            try:
                item = buffer.get(timeout=0.05)
            except queue.Empty:
                return
            results.append(work(item))

    for source in sources:
        producer = threading.Thread(target=produce, args=(source,), daemon=True)
        consumer = threading.Thread(target=consume, daemon=True)
        producer.start()
        consumer.start()
        producer.join()
        consumer.join()
    return results
