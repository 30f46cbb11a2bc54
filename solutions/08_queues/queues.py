"""The three queues of the ``queue`` module, ``task_done``/``join``, and a fair priority scheduler."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any

_STOP = object()  # one per worker: each worker takes exactly one and ends


def fifo_order(items: Iterable[Any]) -> list:
    """Put every item in a ``queue.Queue`` and take them all out again.

    >>> fifo_order("abc")
    ['a', 'b', 'c']
    """
    q: queue.Queue = queue.Queue()
    for item in items:
        q.put(item)
    return [q.get() for _ in range(q.qsize())]


def lifo_order(items: Iterable[Any]) -> list:
    """The same through a ``queue.LifoQueue``: last in, first out.

    >>> lifo_order("abc")
    ['c', 'b', 'a']
    """
    q: queue.LifoQueue = queue.LifoQueue()
    for item in items:
        q.put(item)
    return [q.get() for _ in range(q.qsize())]


def priority_order(pairs: Iterable[tuple[Any, Any]]) -> list:
    """The items of ``(priority, item)`` pairs, lowest priority first, FIFO among ties.

    >>> priority_order([(2, {"job": "b"}), (1, {"job": "a"}), (2, {"job": "c"})])
    [{'job': 'a'}, {'job': 'b'}, {'job': 'c'}]
    """
    q: queue.PriorityQueue = queue.PriorityQueue()
    # The sequence number settles every tie, so two items are never compared.
    for sequence, (priority, item) in enumerate(pairs):
        q.put((priority, sequence, item))
    return [q.get()[2] for _ in range(q.qsize())]


def process_all(
    items: Iterable[Hashable], handler: Callable[[Any], Any], n_workers: int
) -> dict:
    """``{item: handler(item)}``, computed by ``n_workers`` threads fed by one queue.

    If ``handler`` raises, every other item is still handled; the exception is
    raised once all workers have ended.

    >>> process_all([1, 2, 3], lambda x: x * x, n_workers=2)
    {1: 1, 2: 4, 3: 9}
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}")
    tasks: queue.Queue = queue.Queue()
    results: dict = {}
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            item = tasks.get()
            try:
                if item is _STOP:
                    return
                results[item] = handler(item)
            except BaseException as error:  # the caller gets it, after the join
                errors.append(error)
            finally:
                tasks.task_done()  # always, or join() would wait for this item forever

    workers = [
        threading.Thread(target=work, name=f"process_all-worker-{i}") for i in range(n_workers)
    ]
    for worker in workers:
        worker.start()
    ordered = list(items)
    for item in ordered:
        tasks.put(item)
    tasks.join()  # every item handled
    for _ in workers:
        tasks.put(_STOP)
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return {item: results[item] for item in ordered}


class PriorityScheduler:
    """Hands out items lowest priority first, first come first served among equals.

    Items are never compared with each other, so they may be dicts or anything else.

    >>> s = PriorityScheduler()
    >>> s.submit(2, {"job": "later"}); s.submit(1, {"job": "first"}); s.submit(2, {"job": "last"})
    >>> [s.next()["job"] for _ in range(len(s))]
    ['first', 'later', 'last']
    """

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        # next() of an itertools.count is one C call: atomic, unlike `self._n += 1`.
        self._sequence = itertools.count()
        # Ticket and put as one step: otherwise a submit that took its ticket first
        # can land after one that another thread has already seen in the queue.
        self._submitting = threading.Lock()

    def submit(self, priority: Any, item: Any) -> None:
        with self._submitting:
            self._queue.put((priority, next(self._sequence), item))

    def next(self, timeout: float | None = None) -> Any:
        """The next item; waits up to ``timeout`` seconds for one, then raises ``queue.Empty``."""
        return self._queue.get(timeout=timeout)[2]

    def __len__(self) -> int:
        return self._queue.qsize()
