"""shutdown(wait=True) sends the stop signals but never joins the workers: it returns while tasks still run."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

CAUGHT_BY = ["test_shutdown_waits_for_every_task_and_every_worker"]

_STOP = object()  # one per worker: each worker takes exactly one and ends


class ThreadPool:
    def __init__(self, max_workers: int = 5) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._tasks: queue.Queue = queue.Queue()
        self._lock = threading.Lock()  # makes "check shut down, then put" one step
        self._shut_down = False
        self._workers = [
            threading.Thread(target=self._work, name=f"ThreadPool-worker-{i}", daemon=True)
            for i in range(max_workers)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._tasks.put((future, fn, args, kwargs))
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
        # "wait" taken to mean: wait until the stop signals are queued.

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.shutdown(wait=True)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            future, fn, args, kwargs = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # the task's error belongs to its future
                future.set_exception(error)
            else:
                future.set_result(result)
