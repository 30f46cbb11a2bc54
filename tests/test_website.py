"""The website fixture: a real site in its own process, measured from the server side."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest

from pytest_concurrency.fixtures.website import Page, Website


def get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def test_pages_link_as_described_and_sizes_are_exact(website) -> None:
    site = website({
        "/": Page(links=["/a", "b.html", "{origin}/a#top", "{other_origin}/x"]),
        "/a": Page(size=5000),
        "/b.html": Page(),
    })
    home = get(site.url("/")).decode()
    hrefs = re.findall(r'<a href="([^"]+)"', home)
    assert hrefs == ["/a", "b.html", f"{site.origin}/a#top", f"http://localhost:{site.port}/x"]
    assert len(get(site.url("/a"))) == site.size("/a") == 5000
    assert len(home.encode()) == site.size("/")
    assert site.origin.startswith("http://127.0.0.1:")


def test_every_request_is_recorded_with_host_and_status(website) -> None:
    site = website({"/": Page(), "/gone": Page(status=410)})
    get(site.url("/"))
    get(site.other_host_url("/"))
    with pytest.raises(urllib.error.HTTPError) as error:
        get(site.url("/gone"))
    assert error.value.code == 410
    with pytest.raises(urllib.error.HTTPError):
        get(site.url("/nowhere"))
    stats = site.stats()
    assert stats.fetches == {"/": 2, "/gone": 1, "/nowhere": 1}
    assert [r.status for r in stats.requests] == [200, 200, 410, 404]
    assert stats.hosts[f"localhost:{site.port}"] == 1
    assert stats.twice == {"/": 2}
    assert all(r.end is not None and r.end >= r.start for r in stats.requests)


def test_latency_delays_the_answer(website) -> None:
    site = website({"/slow": Page(latency=0.5)})
    started = time.monotonic()
    get(site.url("/slow"))
    assert time.monotonic() - started >= 0.5


def test_peak_in_flight_counts_overlapping_requests_only(website) -> None:
    site = website({f"/p{i}": Page(latency=1.0) for i in range(4)})
    # One after another: never two at once, however fast the client comes back.
    for _ in range(3):
        for i in range(4):
            get(site.url(f"/p{i}"))
    assert site.stats().peak_in_flight == 1
    site.reset()
    # All together: the server sees the four of them at once.
    rendezvous = threading.Barrier(4, timeout=30)

    def fetch(i: int) -> None:
        rendezvous.wait()
        get(site.url(f"/p{i}"), timeout=30)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = site.stats()
    assert stats.peak_in_flight == 4, stats
    assert stats.in_flight == 0
    assert stats.fetches == dict.fromkeys((f"/p{i}" for i in range(4)), 1)


def test_a_page_that_never_answers_costs_the_clients_timeout(website) -> None:
    site = website({"/hang": Page(hang=True)})
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        get(site.url("/hang"), timeout=0.5)
    assert time.monotonic() - started < 10
    # The client hung up: the server no longer counts it in flight.
    deadline = time.monotonic() + 10
    while site.stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = site.stats()
    assert stats.in_flight == 0 and stats.peak_in_flight == 1
    assert stats.requests[0].status is None


def test_hang_limit_ends_a_hanging_request(website) -> None:
    site = website({"/hang": Page(hang=True)}, hang_limit=0.5)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        get(site.url("/hang"), timeout=30)


def test_redirects_point_at_the_target(website) -> None:
    site = website({"/old": Page(redirect="/new"), "/new": Page(size=300),
                    "/moved": Page(redirect="/new", status=301)})
    assert len(get(site.url("/old"))) == 300
    assert len(get(site.url("/moved"))) == 300
    assert [(r.path, r.status) for r in site.stats().requests] == [
        ("/old", 302), ("/new", 200), ("/moved", 301), ("/new", 200)]


def test_several_sites_and_stop(website) -> None:
    first = website({"/": Page()})
    second = website({"/": Page()})
    assert first.port != second.port
    first.stop()
    first.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        get(first.url("/"), timeout=5)
    assert get(second.url("/"))
    with pytest.raises(RuntimeError, match="not running"):
        first.stats()


def test_the_server_runs_in_another_process_and_is_stopped_after_the_test() -> None:
    site = Website({"/": Page()})
    try:
        children = psutil.Process().children()
        assert any(c.pid == site._process.pid for c in children)
        assert get(site.url("/"))
    finally:
        site.stop()
    assert site._process.poll() is not None


@pytest.mark.parametrize(
    "pages, problem",
    [
        ({}, "non-empty dict"),
        ({"a": Page()}, "start with '/'"),
        ({"/a#x": Page()}, "no fragment"),
        ({"/": {"latency": -1}}, "latency=...) must be seconds >= 0, got -1"),
        ({"/": {"colour": "red"}}, "unexpected keyword argument 'colour'"),
        ({"/": {"status": 1000}}, "HTTP status 100-599"),
        ({"/": {"links": "/a"}}, "list of hrefs"),
        ({"/": {"hang": True, "latency": 1}}, "never answers"),
        ({"/": {"redirect": "/a", "status": 404}}, "redirect's status is 3xx"),
        ({"/": 3}, "must be a Page"),
    ],
)
def test_bad_descriptions_are_named(website, pages, problem) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        website(pages)


def test_size_of_an_unknown_page_names_the_pages(website) -> None:
    site = website({"/": Page()})
    with pytest.raises(KeyError, match="pages are"):
        site.size("/nope")
