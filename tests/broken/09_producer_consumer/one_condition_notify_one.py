"""One Condition for "not full" and "not empty" with notify(): a consumer may wake a consumer, and all sleep."""

import queue
import threading
from collections import deque

CAUGHT_BY = [
    "test_capacity_and_exactly_once_in_every_interleaving",
]


class BoundedBuffer:
    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError(capacity)
        self.capacity = capacity
        self._items = deque()
        self._changed = threading.Condition()

    def put(self, item, timeout=None):
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) < self.capacity, timeout):
                raise queue.Full
            self._items.append(item)
            self._changed.notify()  # may wake another producer instead of a consumer

    def get(self, timeout=None):
        with self._changed:
            if not self._changed.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            item = self._items.popleft()
            self._changed.notify()  # may wake another consumer instead of a producer
            return item

    def __len__(self):
        with self._changed:
            return len(self._items)


_DONE = object()


def run_pipeline(sources, work, n_consumers, capacity):
    buffer = BoundedBuffer(capacity)
    results, errors = [], []

    def produce(source):
        for item in source:
            buffer.put(item)

    def consume():
        while (item := buffer.get()) is not _DONE:
            try:
                results.append(work(item))
            except Exception as error:
                errors.append(error)

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
