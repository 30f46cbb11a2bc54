"""Only one worker thread, whatever max_workers says: tasks never overlap."""

import queue
import threading
from concurrent.futures import Future

CAUGHT_BY = ["test_up_to_max_workers_tasks_really_run_at_the_same_time"]


class ThreadPool:
    def __init__(self, max_workers=5):
        if max_workers < 1:
            raise ValueError(max_workers)
        self._tasks = queue.Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._work)
        self._worker.start()

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
        self._tasks.put(None)
        if wait:
            self._worker.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()

    def _work(self):
        while (task := self._tasks.get()) is not None:
            future, fn, args, kwargs = task
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)
