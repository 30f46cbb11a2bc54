"""An exception in work() kills its consumer: with nobody left to consume, the producers block for ever."""

import queue
import threading
from collections import deque

CAUGHT_BY = [
    "test_an_exception_in_work_is_raised_after_the_pipeline_shut_down",
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


_DONE = object()


def run_pipeline(sources, work, n_consumers, capacity):
    buffer = BoundedBuffer(capacity)
    results, errors = [], []

    def produce(source):
        for item in source:
            buffer.put(item)

    def consume():
        try:
            while (item := buffer.get()) is not _DONE:
                results.append(work(item))
        except Exception as error:
            errors.append(error)  # remembered, but this consumer is gone

    producers = [threading.Thread(target=produce, args=(s,), daemon=True) for s in sources]
    consumers = [threading.Thread(target=consume, daemon=True) for _ in range(n_consumers)]
    for thread in producers + consumers:
        thread.start()
    for producer in producers:
        producer.join()
    for _ in consumers:
        buffer.put(_DONE)
    for consumer in consumers:
        consumer.join()
    if errors:
        raise errors[0]
    return results
