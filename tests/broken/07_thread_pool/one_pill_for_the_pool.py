"""Shutdown puts one stop pill in the queue for the whole pool, not one per worker."""

import queue
import threading
from concurrent.futures import Future

CAUGHT_BY = ["test_shutdown_waits_for_every_task_and_every_worker"]
_STOP = object()


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
        self._tasks.put(_STOP)
        if wait:
            self._workers[0].join(timeout=1)  # "the" worker: the others never stop

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()

    def _work(self):
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            future, fn, args, kwargs = task
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)
