"""The interleaving as a picture: lanes in the terminal, --race-html pages, checked in Chromium."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit import need_tools

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parent.parent / "docs"

ABBA = """
    import threading
    from hypothesis import given, settings
    from pytest_concurrency import schedules

    class Account:
        def __init__(self, balance):
            self._balance = balance
            self.lock = threading.Lock()

    def transfer(src, dst, amount):
        with src.lock:
            with dst.lock:
                src._balance -= amount
                dst._balance += amount

    @settings(derandomize=True, database=None)
    @given(schedules())
    def test_opposite_transfers(schedule):
        a, b = Account(100), Account(100)
        schedule.run(lambda: transfer(a, b, 10), lambda: transfer(b, a, 20))
"""

SVG = "{http://www.w3.org/2000/svg}"


def _page(pytester: pytest.Pytester, *options: str) -> tuple[Path, pytest.RunResult]:
    pytester.makepyfile(test_bank=ABBA)
    out = pytester.path / "pictures"
    result = pytester.runpytest("-p", "no:cacheprovider", "--race-html", str(out), *options)
    result.assert_outcomes(failed=1)
    pages = sorted(out.glob("*.html"))
    assert [p.name for p in pages] == ["test_bank.test_opposite_transfers.html"], pages
    return pages[0], result


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def test_race_html_writes_a_page_with_lanes_holds_preemptions_and_the_failing_step(
    pytester: pytest.Pytester,
) -> None:
    page, result = _page(pytester, "--race-story", "lanes")
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    ), "the page must be self-contained"
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", text, re.S).group(0))  # type: ignore[union-attr]
    everything = list(svg.iter())
    lanes = [e.get("data-thread") for e in everything if "lane" in _classes(e) and e.tag == f"{SVG}g"]
    assert lanes == ["T1 (<lambda>)", "T2 (<lambda>)"]
    holds = [e for e in everything if "hold" in _classes(e)]
    assert {h.get("data-thread") for h in holds} == set(lanes), "each thread held a lock"
    assert any("preemption" in _classes(e) for e in everything)
    assert sum("failing" in _classes(e) for e in everything) == 1
    assert "DeadlockError" in text or "blocked" in text
    # The terminal gets lanes too, within 100 columns, and where the page is.
    output = result.stdout.str()
    lanes_block = output.split("the interleaving as lanes")[1].split("the interleaving as a picture")[0]
    body = lanes_block.splitlines()[1:-1]
    assert body[0].startswith("T1 (<lambda>)") and "T2 (<lambda>)" in body[0]
    assert any(line.startswith("~~ T1 (<lambda>) is preempted") for line in body), lanes_block
    assert any("✗" in line for line in body) and any("┃" in line for line in body)
    assert max(len(line) for line in body) <= 100
    assert str(page) in output


def test_no_picture_unless_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=ABBA)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "the interleaving as" not in result.stdout.str()


def test_lanes_fold_a_long_run_and_keep_the_steps_around_each_switch() -> None:
    from pytest_concurrency.scheduler._picture import Step, Switch, Timeline, lanes

    steps = [Step(i // 50, f"m.py:{i}", f"line {i}") for i in range(100)]
    timeline = Timeline(["A", "B"], steps, [Switch(49, 0, 1, "preempted")], [])
    text = lanes(timeline)
    rows = text.splitlines()
    assert len(rows) < 20, text
    for kept in ("m.py:0 ", "m.py:47", "m.py:49", "m.py:50", "m.py:52", "m.py:99"):
        assert kept in text, (kept, text)
    assert "m.py:20 " not in text
    assert max(len(r) for r in rows) <= 100


# ----------------------------------------------------------- a real browser

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebDriver:
    """Just enough of the W3C WebDriver protocol to drive chromedriver (no client library)."""

    def __init__(self, url: str) -> None:
        self.url = url
        capabilities = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": shutil.which("chromium") or "",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,700"],
            },
        }}}
        self.session = self._call("POST", "/session", capabilities)["sessionId"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["value"]

    def do(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def quit(self) -> None:
        self._call("DELETE", f"/session/{self.session}")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    need_tools("chromium", "chromedriver")
    driver = shutil.which("chromedriver") or "chromedriver"
    port = _free_port()
    process = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/status", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        web = WebDriver(url)
        try:
            yield web
        finally:
            web.quit()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_page_loads_in_chromium_without_console_errors(
    pytester: pytest.Pytester, browser: WebDriver
) -> None:
    page, _ = _page(pytester)
    browser.do("POST", "/url", {"url": page.as_uri()})
    counts = browser.do("POST", "/execute/sync", {"script": """
        const svg = document.querySelector('svg.timeline');
        const box = svg.getBoundingClientRect();
        return {lanes: svg.querySelectorAll('g.lane').length,
                holds: svg.querySelectorAll('rect.hold').length,
                preemptions: svg.querySelectorAll('g.preemption').length,
                failing: svg.querySelectorAll('circle.step.failing').length,
                width: box.width, height: box.height};
    """, "args": []})
    assert counts["lanes"] == 2 and counts["holds"] >= 2, counts
    assert counts["preemptions"] >= 1 and counts["failing"] == 1, counts
    assert counts["width"] > 100 and counts["height"] > 100, counts
    logs = browser.do("POST", "/se/log", {"type": "browser"})
    errors = [entry for entry in logs if entry.get("level") == "SEVERE"]
    assert not errors, errors
    shot = base64.b64decode(browser.do("GET", "/screenshot"))
    assert shot.startswith(b"\x89PNG")
    if os.environ.get("UPDATE_SCREENSHOT"):
        (DOCS / "race-picture.png").write_bytes(shot)
