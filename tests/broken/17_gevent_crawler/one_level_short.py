"""Stops one level short of max_depth (max_depth=1 fetches only the start page)."""

# ruff: noqa: E402, F401, F841, I001  (deliberately broken: the solution with one mistake)

CAUGHT_BY = ['test_crawl_follows_same_host_links_to_exactly_max_depth']

from gevent import monkey

# First, before anything imports socket: from here on every network wait switches greenlets.
monkey.patch_all()

import urllib.request  # noqa: E402
from html.parser import HTMLParser  # noqa: E402
from urllib.parse import urldefrag, urljoin, urlsplit  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def _fetch(url: str, timeout: float):
    """(final URL, body) or (url, the exception): never raises for a bad URL."""
    try:
        # urlopen's timeout bounds each socket operation; gevent.Timeout bounds the whole request.
        with (
            gevent.Timeout(timeout, TimeoutError(f"{url}: no complete answer within {timeout} s")),
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            return response.geturl(), response.read()
    except Exception as error:
        return url, error


def _check(concurrency: int, timeout: float) -> None:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")


def fetch_all(urls: list[str], concurrency: int = 10, timeout: float = 5.0) -> dict:
    """{url: bytes received, or the exception} for every URL; at most `concurrency` at once."""
    _check(concurrency, timeout)
    unique = list(dict.fromkeys(urls))
    pool = Pool(concurrency)
    answers = pool.map(lambda url: _fetch(url, timeout)[1], unique)
    return {url: len(body) if isinstance(body, bytes) else body for url, body in zip(unique, answers, strict=True)}


def _links(base: str, body: bytes) -> list[str]:
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", "replace"))
    return [urldefrag(urljoin(base, href)).url for href in parser.hrefs]


def crawl(start_url: str, max_depth: int = 2, concurrency: int = 10, timeout: float = 5.0) -> dict:
    """Breadth first, one level at a time, so that every page is reached at its least depth."""
    _check(concurrency, timeout)
    if max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, got {max_depth}")
    start_url = urldefrag(start_url).url
    host = urlsplit(start_url).netloc.lower()
    pool = Pool(concurrency)
    seen = {start_url}
    level = [start_url]
    result: dict = {}
    for depth in range(max_depth + 1):
        answers = pool.map(lambda url: _fetch(url, timeout), level)
        following: list[str] = []
        for url, (final_url, body) in zip(level, answers, strict=True):
            if not isinstance(body, bytes):
                result[url] = body
                continue
            result[url] = len(body)
            if depth == max_depth - 1:  # stops one level early
                continue
            for link in _links(final_url, body):
                parts = urlsplit(link)
                if parts.scheme in ("http", "https") and parts.netloc.lower() == host and link not in seen:
                    seen.add(link)
                    following.append(link)
        level = following
        if not level:
            break
    return result
