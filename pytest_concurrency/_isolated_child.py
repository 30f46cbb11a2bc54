"""The fresh interpreter of an ``isolated`` test: ``python -m pytest_concurrency._isolated_child``.

Started by :mod:`pytest_concurrency.isolation`, never by hand.  It imports the
student's modules *first*, exactly as ``import crawler`` would, so that a
``monkey.patch_all()`` at their top runs before pytest, threading and socket
users are imported; then it runs pytest on the one test and writes each
report, serialized, to a file the parent reads back::

    python -m pytest_concurrency._isolated_child --reports R.jsonl --timeout 120 \\
        --preload crawler=/kit/exercises/17_gevent_crawler/crawler.py -- <pytest args>

Nothing here may import pytest, threading or socket before the preload.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import json
import os
import sys
from typing import IO, Any

# Tells the plugin in this interpreter to run isolated tests here, not in yet another child.
CHILD_ENV = "PYTEST_CONCURRENCY_ISOLATED_CHILD"


def preload(module: str, path: str) -> None:
    """Import ``path`` as module ``module``, as ``load_impl`` would, before anything else.

    A module that fails to import is dropped again: ``load_impl`` retries it
    inside the test run and reports the problem in its usual words.
    """
    spec = importlib.util.spec_from_file_location(module, path)
    if spec is None or spec.loader is None:
        return
    loaded = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module] = loaded
    try:
        spec.loader.exec_module(loaded)
    except BaseException:  # a student's module may raise anything; load_impl will say what
        sys.modules.pop(module, None)


def parse(argv: list[str]) -> tuple[str, float, list[tuple[str, str]], list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: _isolated_child --reports PATH [--timeout S] [--preload NAME=PATH]... -- PYTEST ARGS")
    split = argv.index("--")
    own, pytest_args = argv[:split], argv[split + 1 :]
    reports, timeout, preloads = "", 0.0, []
    pairs = iter(own)
    for flag in pairs:
        value = next(pairs, None)
        if value is None:
            raise SystemExit(f"_isolated_child: {flag} needs a value")
        if flag == "--reports":
            reports = value
        elif flag == "--timeout":
            timeout = float(value)
        elif flag == "--preload":
            name, _, path = value.partition("=")
            preloads.append((name, path))
        else:
            raise SystemExit(f"_isolated_child: unknown option {flag}")
    if not reports:
        raise SystemExit("_isolated_child: --reports PATH is required")
    return reports, timeout, preloads, pytest_args


def main(argv: list[str]) -> int:
    reports, timeout, preloads, pytest_args = parse(argv)
    os.environ[CHILD_ENV] = "1"
    if timeout > 0:
        # The parent kills us a little later; this leaves every thread's stack in the report.
        # Into a file of our own: pytest's capture owns file descriptor 2 while the test runs.
        stacks = open(reports + ".stacks", "w", encoding="utf-8")  # noqa: SIM115  (lives until exit)
        faulthandler.dump_traceback_later(timeout, exit=True, file=stacks)
    for name, path in preloads:
        preload(name, path)

    import pytest

    with open(reports, "w", encoding="utf-8") as stream:
        return int(pytest.main(pytest_args, plugins=[ReportWriter(stream)]))


class ReportWriter:
    """Every report of the child's run, serialized, one JSON line each, flushed as it comes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.config: Any = None

    def pytest_configure(self, config: Any) -> None:
        self.config = config

    def _write(self, kind: str, report: Any) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.stream.write(json.dumps({"kind": kind, "data": data}, default=repr) + "\n")
        self.stream.flush()

    def pytest_runtest_logreport(self, report: Any) -> None:
        self._write("test", report)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self._write("collect", report)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
