"""Inside each child of ``pytest-concurrency grade``: the plugin that reports to the supervisor.

Loaded with ``-p pytest_concurrency.grading.child`` by :mod:`.supervisor`.  It
takes the pipe and its token out of the environment before any student code
is imported, then sends what was collected and each test's phases as they end,
one signed JSON line each.  Run by anyone else, it does nothing.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from ..layout import exercise_folder, graded_name
from .plugin import longrepr_text, points_of, report_outcome

CHANNEL_ENV = "PYTEST_CONCURRENCY_CHANNEL"  # "FD:TOKEN", read and removed by the child


DESELECT_ENV = "PYTEST_CONCURRENCY_DESELECT"  # a JSON file of node ids not to run again


class _Channel:
    """Writes signed JSON lines to the supervisor's pipe; one writer at a time."""

    def __init__(self, fd: int, token: str) -> None:
        self.fd = fd
        self.token = token
        self.lock = threading.Lock()
        os.set_inheritable(fd, False)

    def send(self, event: str, **data: object) -> None:
        line = json.dumps({"token": self.token, "event": event, **data}) + "\n"
        payload = line.encode("utf-8", "replace")
        with self.lock:
            try:
                while payload:
                    payload = payload[os.write(self.fd, payload):]
            except OSError:
                pass  # the supervisor is gone: nobody is left to tell


class _ChildReporter:
    """Tells the supervisor what was collected, and each test's phases as they end."""

    def __init__(self, channel: _Channel, deselect: frozenset[str]) -> None:
        self.channel = channel
        self.deselect = deselect

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Leave out the tests an earlier child already ran (a restart after a hang or crash)."""
        if not self.deselect:
            return
        kept = [item for item in items if item.nodeid not in self.deselect]
        dropped = [item for item in items if item.nodeid in self.deselect]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept

    def pytest_sessionstart(self) -> None:
        """Say the session began: from now on, collecting (importing student code) is timed."""
        self.channel.send("session")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A module that does not collect is news for the supervisor: it scores those tests 0."""
        if report.failed:
            self.channel.send("collect_error", nodeid=report.nodeid, message=longrepr_text(report))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Send the collected tests, so that the supervisor knows what may still come."""
        tests = []
        for item in session.items:
            folder = exercise_folder(item.path)
            if folder is None:
                continue
            tests.append({
                "nodeid": item.nodeid,
                "name": graded_name(item.path, item.nodeid),
                "exercise": folder.name,
                "points": points_of(item),
            })
        self.channel.send("collected", tests=tests)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        """Say which test runs now: if the child dies, that one is blamed."""
        self.channel.send("start", nodeid=nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Send each phase as it ends: what is sent counts even if the child dies next."""
        self.channel.send(
            "report", nodeid=report.nodeid, when=report.when, outcome=report_outcome(report),
            message=longrepr_text(report), duration=report.duration,
        )

    def pytest_sessionfinish(self) -> None:
        """Say the run is over: a child that exits without this did not finish."""
        self.channel.send("finished")


def pytest_configure(config: pytest.Config) -> None:
    """Take the pipe and its token out of the environment before student code can see them."""
    spec = os.environ.pop(CHANNEL_ENV, None)
    if not spec:
        return  # not run by the supervisor: this module does nothing
    fd_text, _, token = spec.partition(":")
    deselect: frozenset[str] = frozenset()
    deselect_file = os.environ.pop(DESELECT_ENV, None)
    if deselect_file:
        deselect = frozenset(json.loads(Path(deselect_file).read_text(encoding="utf-8")))
    reporter = _ChildReporter(_Channel(int(fd_text), token), deselect)
    config.pluginmanager.register(reporter, "concurrency-supervised-child")

