"""Busy waiting: a blocked put or get spins on the lock instead of sleeping on a Condition."""

import queue
import threading
import time
from collections import deque

CAUGHT_BY = [
    "test_a_get_on_an_empty_buffer_sleeps_until_a_put",
    "test_a_put_on_a_full_buffer_sleeps_until_a_get",
    "test_a_consumer_that_comes_first_waits_without_spinning",
]


class BoundedBuffer:
    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError(capacity)
        self.capacity = capacity
        self._items = deque()
        self._lock = threading.Lock()

    def put(self, item, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self._items) < self.capacity:
                    self._items.append(item)
                    return
            if deadline is not None and time.monotonic() > deadline:
                raise queue.Full

    def get(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
            if deadline is not None and time.monotonic() > deadline:
                raise queue.Empty

    def __len__(self):
        with self._lock:
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
