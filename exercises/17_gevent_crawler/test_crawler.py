"""Graded tests of exercise 17: a concurrent crawler on gevent.

Every test runs in a fresh interpreter (``isolated``) in which crawler.py is
imported first, as ``import crawler`` would: its ``monkey.patch_all()`` then
patches that interpreter only.  The site is a real server in another process
(the ``website`` fixture), which measures concurrency from its side.
"""

from __future__ import annotations

import socket
import time

import gevent
import pytest

from pytest_concurrency import load_impl
from pytest_concurrency.fixtures.website import Page

pytestmark = pytest.mark.isolated(timeout=120)
crawler = load_impl("crawler")

# Generous: the machine may be busy. A page that waits LATENCY seconds before answering.
LATENCY = 1.5
# A hanging page answers nothing for this long, so that even a crawler without a timeout returns.
HANG_LIMIT = 20.0
PATCH_HINT = (
    "network calls switch greenlets only after `from gevent import monkey; monkey.patch_all()` "
    "at the very top of crawler.py, before urllib or socket are imported"
)


class Heartbeat:
    """A greenlet that ticks every 20 ms: a long gap means the event loop was blocked.

    >>> with Heartbeat() as beat:
    ...     gevent.sleep(0.1)
    >>> beat.longest_gap < 0.1
    True
    """

    def __enter__(self) -> Heartbeat:
        self.ticks = [time.monotonic()]
        self.greenlet = gevent.spawn(self._beat)
        return self

    def _beat(self) -> None:
        while True:
            gevent.sleep(0.02)
            self.ticks.append(time.monotonic())

    def __exit__(self, *exc_info) -> None:
        self.ticks.append(time.monotonic())
        self.greenlet.kill()

    @property
    def longest_gap(self) -> float:
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False))


def check_event_loop_ran(beat: Heartbeat, what: str) -> None:
    assert beat.longest_gap < LATENCY * 2 / 3, (
        f"while {what} ran, gevent's event loop was blocked for {beat.longest_gap:.1f} s at a time: "
        f"no other greenlet could run, so the requests were not concurrent in this thread. "
        f"Use greenlets (not threads), and remember that {PATCH_HINT}"
    )


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def sizes_or_errors(result: dict) -> dict:
    return {url: type(v).__name__ if isinstance(v, BaseException) else v for url, v in result.items()}


# --- fetch_all ------------------------------------------------------------------------------


@pytest.mark.points(2)
def test_fetch_all_returns_the_number_of_bytes_of_each_page(website):
    site = website({"/small": Page(size=100), "/medium": Page(size=2_000), "/large": Page(size=300_000)})
    urls = [site.url("/small"), site.url("/medium"), site.url("/large")]
    result = crawler.fetch_all(urls, concurrency=3, timeout=30)
    expected = {site.url(p): site.size(p) for p in ("/small", "/medium", "/large")}
    assert sizes_or_errors(result) == expected, "fetch_all must return {url: number of bytes of the body}"


@pytest.mark.points(1)
def test_fetch_all_of_nothing_is_an_empty_dict():
    assert crawler.fetch_all([], concurrency=2, timeout=5) == {}


@pytest.mark.points(3)
def test_fetch_all_reports_each_failure_in_place_of_the_size_without_raising(website):
    site = website({"/ok": Page(size=500), "/server-error": Page(status=500)})
    urls = [site.url("/missing"), site.url("/server-error"), refused_url(), site.url("/ok")]
    result = crawler.fetch_all(urls, concurrency=4, timeout=30)
    assert set(result) == set(urls), f"one entry per URL: got {sorted(result)}"
    assert result[site.url("/ok")] == site.size("/ok"), "a good page among bad ones still gets its size"
    not_errors = {url: v for url, v in result.items() if url != site.url("/ok") and not isinstance(v, Exception)}
    assert not not_errors, (
        f"a URL that failed (404, 500, connection refused) must map to the exception object: {not_errors}"
    )


@pytest.mark.points(4)
def test_fetch_all_is_concurrent_in_one_thread(website):
    n = 5
    site = website({f"/slow{i}": Page(latency=LATENCY) for i in range(n)})
    urls = [site.url(f"/slow{i}") for i in range(n)]
    started = time.monotonic()
    with Heartbeat() as beat:
        result = crawler.fetch_all(urls, concurrency=10, timeout=30)
    elapsed = time.monotonic() - started
    assert set(result) == set(urls)
    check_event_loop_ran(beat, "fetch_all")
    peak = site.stats().peak_in_flight
    assert peak == n, (
        f"the server never saw the {n} requests at the same time (at most {peak} at once) "
        f"with concurrency=10: start them all before waiting for any"
    )
    assert elapsed < LATENCY * (n - 1), (
        f"{n} pages of {LATENCY} s each took {elapsed:.1f} s: concurrent requests take about "
        f"as long as the slowest page, not the sum"
    )


@pytest.mark.points(3)
def test_fetch_all_never_has_more_than_concurrency_requests_in_flight(website):
    paths = [f"/p{i}" for i in range(12)]
    site = website({path: Page(latency=0.5) for path in paths})
    result = crawler.fetch_all([site.url(p) for p in paths], concurrency=3, timeout=30)
    assert sizes_or_errors(result) == {site.url(p): site.size(p) for p in paths}
    stats = site.stats()
    assert stats.peak_in_flight <= 3, (
        f"the server saw {stats.peak_in_flight} requests in flight at once with concurrency=3: "
        f"limit them (a gevent Pool of that size, or a Semaphore)"
    )
    assert stats.peak_in_flight == 3, (
        f"with concurrency=3 and 12 slow pages, only {stats.peak_in_flight} ran at once"
    )


@pytest.mark.points(3)
def test_timeout_bounds_each_request(website):
    site = website({"/hang": Page(hang=True), "/ok": Page(size=700)}, hang_limit=HANG_LIMIT)
    started = time.monotonic()
    result = crawler.fetch_all([site.url("/hang"), site.url("/ok")], concurrency=2, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 8, (
        f"a page that never answers cost {elapsed:.1f} s with timeout=1.0: pass the timeout to "
        f"every request (urlopen(url, timeout=...)) or bound it with gevent.Timeout"
    )
    assert isinstance(result.get(site.url("/hang")), Exception), (
        f"the page that never answered must map to its exception (a timeout), got {result.get(site.url('/hang'))!r}"
    )
    assert result.get(site.url("/ok")) == site.size("/ok")


# --- crawl ----------------------------------------------------------------------------------

# / -> /a, /b ; /a -> /a1 ; /b -> /b1 ; /a1 -> /a2 (depth 3) ; links written in every style.
TREE = {
    "/": Page(links=["/a", "b"]),
    "/a": Page(links=["{origin}/a1", "/"]),
    "/b": Page(links=["./b1"], size=1500),
    "/a1": Page(links=["a2"]),
    "/b1": Page(),
    "/a2": Page(),
}
DEPTHS = {"/": 0, "/a": 1, "/b": 1, "/a1": 2, "/b1": 2, "/a2": 3}


@pytest.mark.points(1)
def test_crawl_with_max_depth_0_fetches_the_start_page_only(website):
    site = website(TREE)
    result = crawler.crawl(site.url("/"), max_depth=0, concurrency=4, timeout=30)
    assert sizes_or_errors(result) == {site.url("/"): site.size("/")}
    assert dict(site.stats().fetches) == {"/": 1}


@pytest.mark.points(4)
@pytest.mark.parametrize("max_depth", [1, 2, 3])
def test_crawl_follows_same_host_links_to_exactly_max_depth(website, max_depth):
    site = website(TREE)
    result = crawler.crawl(site.url("/"), max_depth=max_depth, concurrency=4, timeout=30)
    wanted = {path for path, depth in DEPTHS.items() if depth <= max_depth}
    fetched = set(site.stats().fetches)
    assert fetched == wanted, (
        f"with max_depth={max_depth} the crawler must fetch the pages at most {max_depth} links "
        f"away: {sorted(wanted)}; it fetched {sorted(fetched)}"
    )
    assert sizes_or_errors(result) == {site.url(p): site.size(p) for p in wanted}, (
        "crawl must return {absolute url without fragment: number of bytes} for the pages fetched"
    )


@pytest.mark.points(2)
def test_crawl_counts_depth_by_the_shortest_path(website):
    # /short is 1 link away from / and also 3 links away via /x -> /y; its child is at depth 2.
    site = website({
        "/": Page(links=["/x", "/short"]),
        "/x": Page(links=["/y"]),
        "/y": Page(links=["/short"]),
        "/short": Page(links=["/child"], latency=0.3),
        "/child": Page(),
    })
    crawler.crawl(site.url("/"), max_depth=2, concurrency=4, timeout=30)
    fetched = set(site.stats().fetches)
    assert fetched == {"/", "/x", "/y", "/short", "/child"}, (
        f"/child is 2 links away (/ -> /short -> /child) and must be fetched with max_depth=2; "
        f"fetched {sorted(fetched)}. Crawl breadth first, one depth at a time."
    )


@pytest.mark.points(3)
def test_crawl_fetches_each_page_once(website):
    site = website({
        "/": Page(links=["/a", "a", "./a", "{origin}/a", "/a#top", "/b", "/"]),
        "/a": Page(links=["/", "/b", "b#section", "../a"]),
        "/b": Page(links=["/a", "{origin}/", "/c"]),
        "/c": Page(links=["/a", "/b"]),
    })
    result = crawler.crawl(site.url("/"), max_depth=3, concurrency=4, timeout=30)
    twice = site.stats().twice
    assert not twice, (
        f"pages fetched more than once: {twice}. Resolve every link against its page "
        f"(urljoin), drop the #fragment (urldefrag), and remember what was already seen"
    )
    assert set(result) == {site.url(p) for p in ("/", "/a", "/b", "/c")}


@pytest.mark.points(2)
def test_crawl_ignores_other_hosts_and_fragments(website):
    site = website({
        "/": Page(links=["{other_origin}/elsewhere", "#top", "/page#part", "mailto:someone@example.com"]),
        "/page": Page(links=["{other_origin}/", "#bottom"]),
    })
    result = crawler.crawl(site.url("/"), max_depth=2, concurrency=4, timeout=30)
    stats = site.stats()
    elsewhere = [r.path for r in stats.requests if not r.host.startswith("127.0.0.1:")]
    assert not elsewhere, (
        f"the crawler followed links to another host (localhost:{site.port}): {elsewhere}; "
        f"follow only links whose host is the start page's"
    )
    assert set(result) == {site.url("/"), site.url("/page")}, (
        f"crawl must return the pages of the start host, without #fragments: got {sorted(result)}"
    )
    assert dict(stats.fetches) == {"/": 1, "/page": 1}


@pytest.mark.points(2)
def test_crawl_reports_failed_pages_and_goes_on(website):
    site = website({
        "/": Page(links=["/missing", "/broken", "/fine"]),
        "/broken": Page(status=500, links=["/never"]),
        "/fine": Page(links=["/deeper"]),
        "/deeper": Page(),
    })
    result = crawler.crawl(site.url("/"), max_depth=2, concurrency=4, timeout=30)
    for path in ("/missing", "/broken"):
        assert isinstance(result.get(site.url(path)), Exception), (
            f"{path} failed: crawl must map it to the exception, got {result.get(site.url(path))!r}"
        )
    assert result.get(site.url("/deeper")) == site.size("/deeper"), "the crawl goes on past failed pages"
    assert "/never" not in site.stats().fetches, "links of an error page are not followed"


@pytest.mark.points(3)
def test_crawl_is_concurrent_and_bounded(website):
    n = 8
    pages = {f"/p{i}": Page(latency=LATENCY) for i in range(n)}
    site = website({"/": Page(links=list(pages)), **pages})
    started = time.monotonic()
    with Heartbeat() as beat:
        result = crawler.crawl(site.url("/"), max_depth=1, concurrency=4, timeout=30)
    elapsed = time.monotonic() - started
    assert len(result) == n + 1
    check_event_loop_ran(beat, "crawl")
    peak = site.stats().peak_in_flight
    assert peak <= 4, f"the server saw {peak} requests in flight at once with concurrency=4"
    assert peak == 4, f"with concurrency=4 and {n} slow pages, only {peak} ran at once"
    assert elapsed < LATENCY * (n - 2), (
        f"{n} pages of {LATENCY} s, 4 at a time, took {elapsed:.1f} s: about {2 * LATENCY:.0f} s expected"
    )


@pytest.mark.points(1)
def test_crawl_timeout_bounds_each_request(website):
    site = website({"/": Page(links=["/hang"]), "/hang": Page(hang=True)}, hang_limit=HANG_LIMIT)
    started = time.monotonic()
    result = crawler.crawl(site.url("/"), max_depth=1, concurrency=2, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 8, f"a page that never answers cost {elapsed:.1f} s with timeout=1.0"
    assert isinstance(result.get(site.url("/hang")), Exception)
