"""Exercise 07: a thread pool. Read README.md in this folder first.

Build it with `threading` and `queue` only; `concurrent.futures.Future` is
allowed for the results, `ThreadPoolExecutor` is not.
"""

from __future__ import annotations

from concurrent.futures import Future  # noqa: F401  (you will need it)

_README = "exercises/07_thread_pool/README.md"


class ThreadPool:
    def __init__(self, max_workers: int = 5) -> None:
        raise NotImplementedError(f"ThreadPool.__init__: write it (see {_README})")

    def submit(self, fn, /, *args, **kwargs) -> Future:
        raise NotImplementedError(f"ThreadPool.submit: write it (see {_README})")

    def map(self, fn, iterable) -> list:
        raise NotImplementedError(f"ThreadPool.map: write it (see {_README})")

    def shutdown(self, wait: bool = True) -> None:
        raise NotImplementedError(f"ThreadPool.shutdown: write it (see {_README})")

    def __enter__(self) -> ThreadPool:
        raise NotImplementedError(f"ThreadPool.__enter__: write it (see {_README})")

    def __exit__(self, *exc_info) -> None:
        self.shutdown(wait=True)
