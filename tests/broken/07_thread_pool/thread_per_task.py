"""A new thread for every task: no worker is ever reused."""

import threading
from concurrent.futures import Future

CAUGHT_BY = ["test_never_more_than_max_workers_threads_and_they_are_reused"]


class ThreadPool:
    def __init__(self, max_workers=5):
        if max_workers < 1:
            raise ValueError(max_workers)
        self._threads = []
        self._closed = False

    def submit(self, fn, /, *args, **kwargs):
        if self._closed:
            raise RuntimeError("shut down")
        future = Future()

        def run():
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)

        thread = threading.Thread(target=run)
        self._threads.append(thread)
        thread.start()
        return future

    def map(self, fn, iterable):
        return [f.result() for f in [self.submit(fn, x) for x in iterable]]

    def shutdown(self, wait=True):
        self._closed = True
        if wait:
            for thread in self._threads:
                thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
