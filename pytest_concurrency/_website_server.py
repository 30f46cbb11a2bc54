"""The server process behind the ``website`` fixture: ``python -m pytest_concurrency._website_server``.

Protocol, one JSON document per line:

- stdin, first line: the site, ``{"pages": {path: page}, "hang_limit": seconds}``
  (see :class:`pytest_concurrency.fixtures.website.Page` for a page's fields);
- stdout, first line: ``{"port": N, "sizes": {path: body bytes}}``;
- then each line ``stats`` / ``reset`` on stdin is answered by one line on
  stdout; end of stdin (the test process ended or stopped the site) stops the
  server.

It runs in its own process so that ``gevent.monkey.patch_all()`` in the test
process cannot touch it, and it measures from outside: a request is *in
flight* from the moment its request line arrived until the server starts to
answer it (so a client that waits for an answer before sending its next
request is never counted twice), or, for a page that never answers, until the
client hangs up.
"""

from __future__ import annotations

import html
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_HANG_LIMIT = 60.0
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


def page_body(path: str, page: dict[str, Any], origin: str, other_origin: str) -> bytes:
    """The HTML of a page: its links as ``<a href>``, padded to ``size`` bytes if asked."""
    links = "\n".join(
        f'<li><a href="{html.escape(expand(href, origin, other_origin), quote=True)}">link {i}</a></li>'
        for i, href in enumerate(page.get("links", ()))
    )
    status = page.get("status", 200)
    title = html.escape(path) if status < 400 else f"{status} for {html.escape(path)}"
    text = f"<!doctype html>\n<html><head><title>{title}</title></head>\n<body>\n<ul>\n{links}\n</ul>\n"
    end = "</body></html>\n"
    size = page.get("size")
    body = text + end
    if size is not None and size > len(body.encode()):
        filler = size - len(body.encode()) - len("<!--  -->\n")
        body = text + "<!-- " + "x" * max(filler, 0) + " -->\n" + end
    return body.encode()


def expand(href: str, origin: str, other_origin: str) -> str:
    return href.replace("{origin}", origin).replace("{other_origin}", other_origin)


class Site:
    """The pages, their bodies, and everything the server saw (guarded by one lock)."""

    def __init__(self, pages: dict[str, dict[str, Any]], hang_limit: float) -> None:
        self.pages = pages
        self.hang_limit = hang_limit
        self.bodies: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reset()

    def build(self, port: int) -> None:
        origin, other = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
        self.origin = origin
        self.other_origin = other
        self.bodies = {path: page_body(path, page, origin, other) for path, page in self.pages.items()}

    def reset(self) -> None:
        with self.lock:
            self.requests: list[dict[str, Any]] = []
            self.in_flight = 0
            self.peak_in_flight = 0

    def arrive(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(record)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self, record: dict[str, Any], status: int | None) -> None:
        with self.lock:
            self.in_flight -= 1
            record["end"] = time.monotonic()
            record["status"] = status

    def stats(self) -> dict[str, Any]:
        with self.lock:
            fetches: dict[str, int] = {}
            for record in self.requests:
                fetches[record["path"]] = fetches.get(record["path"], 0) + 1
            return {
                "requests": [dict(r) for r in self.requests],
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "fetches": fetches,
            }


class Handler(BaseHTTPRequestHandler):
    server_version = "pytest-concurrency-website/1"
    protocol_version = "HTTP/1.0"  # one request per connection: in flight is per request
    site: Site

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        site = self.site
        path = self.path.split("#", 1)[0]
        record = {"path": path, "host": self.headers.get("Host", ""), "start": time.monotonic(),
                  "end": None, "status": None}
        site.arrive(record)
        page = site.pages.get(path)
        if page is None:
            site.leave(record, 404)
            self.answer(404, f"<html><body>no page {html.escape(path)}</body></html>\n".encode())
            return
        if page.get("hang"):
            self.hang()
            site.leave(record, None)
            self.close_connection = True
            return
        latency = page.get("latency", 0.0)
        if latency and site.stopping.wait(latency):
            site.leave(record, None)
            return
        status = page.get("status", 200)
        redirect = page.get("redirect")
        if redirect is not None:
            status = status if status in REDIRECT_STATUSES else 302
            site.leave(record, status)
            self.answer(status, b"", location=expand(redirect, site.origin, site.other_origin))
            return
        site.leave(record, status)
        self.answer(status, site.bodies[path])

    def hang(self) -> None:
        """Never answer: wait until the client hangs up, the hang limit, or the end of the server."""
        deadline = time.monotonic() + self.site.hang_limit
        connection = self.connection
        while not self.site.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.05)
            if readable:
                try:
                    if not connection.recv(4096):
                        return  # the client gave up
                except OSError:
                    return

    def answer(self, status: int, body: bytes, location: str | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if location is not None:
                if location.startswith("/"):
                    location = self.site.origin + location
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (its timeout): nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a burst of concurrent connects must not be dropped

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-request is not the server's problem


def main() -> int:
    line = sys.stdin.readline()
    if not line:
        return 0
    description = json.loads(line)
    site = Site(description["pages"], float(description.get("hang_limit", DEFAULT_HANG_LIMIT)))
    handler = type("SiteHandler", (Handler,), {"site": site})
    server = Server(("127.0.0.1", 0), handler)
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = server.server_address[1]
    site.build(port)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    reply({"port": port, "sizes": {path: len(body) for path, body in site.bodies.items()}})
    for command in sys.stdin:
        command = command.strip()
        if command == "stats":
            reply(site.stats())
        elif command == "reset":
            site.reset()
            reply({"ok": True})
        elif command == "stop":
            break
        else:
            reply({"error": f"unknown command {command!r}"})
    site.stopping.set()
    server.shutdown()
    server.server_close()
    return 0


def reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
