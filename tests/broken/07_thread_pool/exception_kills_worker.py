"""An exception in a task escapes the worker: the future never resolves and the worker dies."""

import queue
import threading
from concurrent.futures import Future

CAUGHT_BY = ["test_an_exception_in_a_task_is_raised_by_result_and_by_map"]


class ThreadPool:
    def __init__(self, max_workers=5):
        if max_workers < 1:
            raise ValueError(max_workers)
        self._tasks = queue.Queue()
        self._closed = False
        self._workers = [threading.Thread(target=self._work, daemon=True) for _ in range(max_workers)]
        for worker in self._workers:
            worker.start()

    def submit(self, fn, /, *args, **kwargs):
        if self._closed:
            raise RuntimeError("shut down")
        future = Future()
        self._tasks.put((future, fn, args, kwargs))
        return future

    def map(self, fn, iterable):
        return [f.result() for f in [self.submit(fn, x) for x in iterable]]

    def shutdown(self, wait=True):
        self._closed = True
        for _ in self._workers:
            self._tasks.put(None)
        if wait:
            for worker in self._workers:
                worker.join(timeout=1)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()

    def _work(self):
        while (task := self._tasks.get()) is not None:
            future, fn, args, kwargs = task
            future.set_result(fn(*args, **kwargs))
