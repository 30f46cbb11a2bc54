"""put/get with a timeout give up at once when full/empty, as if the timeout meant "don't block"."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

CAUGHT_BY = [
    "test_put_on_a_full_buffer_raises_queue_full_after_the_timeout",
    "test_get_on_an_empty_buffer_raises_queue_empty_after_the_timeout",
]

_DONE = object()  # the poison pill: one per consumer, each consumer takes exactly one


class BoundedBuffer:
    """A FIFO of at most ``capacity`` items; ``put`` blocks while full, ``get`` while empty.

    >>> buffer = BoundedBuffer(2)
    >>> buffer.put("a"); buffer.put("b")
    >>> len(buffer), buffer.get(), buffer.get()
    (2, 'a', 'b')
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: deque[Any] = deque()
        lock = threading.Lock()
        # Two conditions on one lock: a get wakes a producer, never another consumer.
        self._not_full = threading.Condition(lock)
        self._not_empty = threading.Condition(lock)

    def put(self, item: Any, timeout: float | None = None) -> None:
        with self._not_full:
            if timeout is not None and len(self._items) >= self.capacity:
                raise queue.Full("full")
            if not self._not_full.wait_for(lambda: len(self._items) < self.capacity, timeout):
                raise queue.Full(f"the buffer stayed full ({self.capacity} items) for {timeout} s")
            self._items.append(item)
            self._not_empty.notify()

    def get(self, timeout: float | None = None) -> Any:
        with self._not_empty:
            if timeout is not None and not self._items:
                raise queue.Empty("empty")
            if not self._not_empty.wait_for(lambda: len(self._items) > 0, timeout):
                raise queue.Empty(f"the buffer stayed empty for {timeout} s")
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def __len__(self) -> int:
        with self._not_full:
            return len(self._items)


def run_pipeline(
    sources: Iterable[Iterable[Any]],
    work: Callable[[Any], Any],
    n_consumers: int,
    capacity: int,
) -> list:
    """``work(item)`` for every item of every source, by ``n_consumers`` threads, any order.

    One producer thread per source feeds one :class:`BoundedBuffer`. If
    ``work`` raises, the pipeline still shuts down, then the error is raised.

    >>> sorted(run_pipeline([range(3), [10]], lambda x: x * 2, n_consumers=2, capacity=1))
    [0, 2, 4, 20]
    """
    buffer = BoundedBuffer(capacity)
    results: list[Any] = []
    errors: list[BaseException] = []

    def produce(source: Iterable[Any]) -> None:
        for item in source:
            buffer.put(item)

    def consume() -> None:
        while (item := buffer.get()) is not _DONE:
            try:
                results.append(work(item))
            except BaseException as error:  # keep consuming, or the producers block for ever
                errors.append(error)

    producers = [
        threading.Thread(target=produce, args=(source,), name=f"producer-{i}")
        for i, source in enumerate(sources)
    ]
    consumers = [threading.Thread(target=consume, name=f"consumer-{i}") for i in range(n_consumers)]
    for thread in producers + consumers:
        thread.start()
    for producer in producers:
        producer.join()
    # Only now, behind every item: a pill sent earlier could overtake items still to come.
    for _ in consumers:
        buffer.put(_DONE)
    for consumer in consumers:
        consumer.join()
    if errors:
        raise errors[0]
    return results
