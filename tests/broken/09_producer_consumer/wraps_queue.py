"""Wraps queue.Queue instead of building the buffer on a Condition."""

import queue
import threading
from collections import deque

CAUGHT_BY = [
    "test_built_on_condition_not_on_a_queue",
]


class BoundedBuffer:
    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError(capacity)
        self._queue = queue.Queue(capacity)
        self._unused = deque()

    def put(self, item, timeout=None):
        self._queue.put(item, timeout=timeout)

    def get(self, timeout=None):
        return self._queue.get(timeout=timeout)

    def __len__(self):
        return self._queue.qsize()


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
