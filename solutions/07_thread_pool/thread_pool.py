"""A thread pool built from ``threading`` and ``queue``: workers start on demand and are reused."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

_STOP = object()  # one per worker: each worker takes exactly one and ends


class ThreadPool:
    def __init__(self, max_workers: int = 5) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._max_workers = max_workers
        self._tasks: queue.Queue = queue.Queue()
        # Guards the bookkeeping: "check shut down, then put" is one step, and so is
        # "is a worker idle, or may I start one more?"
        self._lock = threading.Lock()
        self._shut_down = False
        self._workers: list[threading.Thread] = []  # started on demand, at most max_workers
        self._idle = 0  # workers back at the queue that no submit has claimed yet

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._tasks.put((future, fn, args, kwargs))
            if self._idle:
                self._idle -= 1  # an idle worker will take this task
            elif len(self._workers) < self._max_workers:
                self._start_worker()
        return future

    def map(self, fn, iterable) -> list:
        futures = [self.submit(fn, item) for item in iterable]
        return [future.result() for future in futures]

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if not self._shut_down:
                self._shut_down = True
                # Behind every task already queued: the workers finish those first.
                for _ in self._workers:
                    self._tasks.put(_STOP)
        if wait:
            for worker in self._workers:
                worker.join()

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown(wait=True)

    def _start_worker(self) -> None:
        worker = threading.Thread(
            target=self._work, name=f"ThreadPool-worker-{len(self._workers)}", daemon=True
        )
        self._workers.append(worker)
        worker.start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            future, fn, args, kwargs = task
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:  # the task's error belongs to its future
                    future.set_exception(error)
                else:
                    future.set_result(result)
            with self._lock:
                self._idle += 1
