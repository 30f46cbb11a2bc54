"""Exercise 17: a concurrent crawler on gevent. Read README.md in this folder first.

Both functions run in one OS thread: greenlets, a gevent Pool, and
`monkey.patch_all()` so that urllib's network waits switch greenlets.
"""

_README = "exercises/17_gevent_crawler/README.md"


def fetch_all(urls: list[str], concurrency: int = 10, timeout: float = 5.0) -> dict:
    raise NotImplementedError(f"fetch_all: write it (see {_README})")


def crawl(start_url: str, max_depth: int = 2, concurrency: int = 10, timeout: float = 5.0) -> dict:
    raise NotImplementedError(f"crawl: write it (see {_README})")
