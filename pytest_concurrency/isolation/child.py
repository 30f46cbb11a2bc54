"""The fresh interpreter of ``isolated`` tests: ``python -m pytest_concurrency.isolation.child``.

Started by :mod:`pytest_concurrency.isolation`, never by hand.  It imports the
student's modules *first*, exactly as ``import crawler`` would, so that a
``monkey.patch_all()`` at their top runs before pytest, threading and socket
users are imported; then it collects the tests it was given and waits for the
parent to say which one to run next::

    python -m pytest_concurrency.isolation.child --commands 5 --reports 6 \\
        --stacks S.txt --timeout 120 --import-timeout 10 \\
        --preload crawler=/kit/exercises/17_gevent_crawler/crawler.py -- <pytest args>

The two file descriptors are pipes from and to the parent, one JSON object a
line.  The parent writes ``{"op": "run", "nodeid": ..., "next": ...,
"timeout": ...}``; ``next`` is the test the parent runs after this one when
this interpreter runs it too (so module and session fixtures stay up between
the two), or null.  The child answers, in order, ``collect`` (a failed
collection, once, before anything else), ``start``, one ``test`` per report
(setup, call, teardown) as it is made, and ``done``; or ``missing`` when it
has no such test.  When the commands pipe closes, the child tears everything
down and exits.

While a test runs, faulthandler dumps every thread's stack into the stacks file
and ends the interpreter once the test's ``timeout`` has passed (interpreter
start, preload and collection count towards the first test's).  A preload that
runs past ``--import-timeout`` is interrupted, as ``load_impl`` would interrupt
it: the exercise is broken, with the same one line.

Nothing here may import pytest, threading or socket before the preload.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import json
import os
import signal
import sys
from types import FrameType
from typing import IO, Any

# Tells the plugin in this interpreter to run isolated tests here, not in yet another child.
CHILD_ENV = "PYTEST_CONCURRENCY_ISOLATED_CHILD"


class _PreloadTimedOut(BaseException):
    """Raised into a student's module whose import runs past the limit (not an ``Exception``,
    so that its own ``except Exception`` does not swallow it)."""


# Like load_impl's limit: the alarm repeats until the import gives up.
REPEAT_INTERRUPT = 0.5


def preload(module: str, path: str, limit: float = 0.0) -> list[FrameType | None]:
    """Import ``path`` as module ``module``, as ``load_impl`` would, before anything else.

    A module that fails to import is dropped again: ``load_impl`` retries it
    inside the test run and reports the problem in its usual words.  One that
    runs past ``limit`` seconds is interrupted, and the frame it was running is
    returned (in a list; empty: in time), for ``load_impl`` to report it broken
    without importing it again.
    """
    spec = importlib.util.spec_from_file_location(module, path)
    if spec is None or spec.loader is None:
        return []
    loaded = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module] = loaded
    interrupted: list[FrameType | None] = []

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if not interrupted:
            interrupted.append(frame)
        raise _PreloadTimedOut

    previous = signal.signal(signal.SIGALRM, on_alarm) if limit > 0 else None
    try:
        if limit > 0:
            signal.setitimer(signal.ITIMER_REAL, limit, REPEAT_INTERRUPT)
        spec.loader.exec_module(loaded)
    except BaseException:  # a student's module may raise anything; load_impl will say what
        sys.modules.pop(module, None)
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if interrupted:
        sys.modules.pop(module, None)
    return interrupted


USAGE = (
    "usage: python -m pytest_concurrency.isolation.child --commands FD --reports FD [--stacks PATH] [--timeout S] "
    "[--import-timeout S] [--preload NAME=PATH]... -- PYTEST ARGS"
)


def parse(argv: list[str]) -> dict[str, Any]:
    if "--" not in argv:
        raise SystemExit(USAGE)
    split = argv.index("--")
    own, pytest_args = argv[:split], argv[split + 1 :]
    options: dict[str, Any] = {"commands": -1, "reports": -1, "stacks": "", "timeout": 0.0,
                               "import_timeout": 0.0, "preloads": [], "pytest_args": pytest_args}
    pairs = iter(own)
    for flag in pairs:
        value = next(pairs, None)
        if value is None:
            raise SystemExit(f"isolation.child: {flag} needs a value")
        if flag in ("--commands", "--reports"):
            options[flag[2:]] = int(value)
        elif flag == "--stacks":
            options["stacks"] = value
        elif flag in ("--timeout", "--import-timeout"):
            options[flag[2:].replace("-", "_")] = float(value)
        elif flag == "--preload":
            name, _, path = value.partition("=")
            options["preloads"].append((name, path))
        else:
            raise SystemExit(f"isolation.child: unknown option {flag}")
    if options["commands"] < 0 or options["reports"] < 0:
        raise SystemExit(USAGE)
    return options


def main(argv: list[str]) -> int:
    options = parse(argv)
    os.environ[CHILD_ENV] = "1"
    # Our pipes to the parent are ours alone: a process a test starts must not hold them open.
    for fd in (options["commands"], options["reports"]):
        os.set_inheritable(fd, False)
    commands = os.fdopen(options["commands"], "r", encoding="utf-8")
    reports = os.fdopen(options["reports"], "w", encoding="utf-8")
    # Into a file of our own: pytest's capture owns file descriptor 2 while a test runs.
    stacks = open(options["stacks"] or os.devnull, "w", encoding="utf-8")  # noqa: SIM115  (lives until exit)
    watchdog = Watchdog(stacks)
    watchdog.arm(options["timeout"])  # the preload and collection count towards the first test
    timed_out = []
    for name, path in options["preloads"]:
        timed_out += [(path, frame) for frame in preload(name, path, options["import_timeout"])]

    import pytest

    from pytest_concurrency.impl import preload_timed_out

    for path, frame in timed_out:
        preload_timed_out(path, options["import_timeout"], frame)

    # Before pytest's own loop (which would run every item): it never runs here.
    pytest.hookimpl(tryfirst=True)(Driver.pytest_runtestloop)
    return int(pytest.main(options["pytest_args"], plugins=[Driver(commands, reports, watchdog)]))


class Watchdog:
    """faulthandler's timer: the stacks of every thread, then the end of the interpreter."""

    def __init__(self, stacks: IO[str]) -> None:
        self.stacks = stacks

    def arm(self, timeout: float) -> None:
        if timeout > 0:
            faulthandler.dump_traceback_later(timeout, exit=True, file=self.stacks)

    def disarm(self) -> None:
        faulthandler.cancel_dump_traceback_later()


class ReportWriter:
    """Every report of the child's run, serialized, one JSON line each, flushed as it comes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.config: Any = None

    def pytest_configure(self, config: Any) -> None:
        """Keep the config: reports are serialized through its hooks."""
        self.config = config

    def send(self, message: dict[str, Any]) -> None:
        self.stream.write(json.dumps(message, default=repr) + "\n")
        self.stream.flush()

    def _write(self, kind: str, report: Any) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.send({"kind": kind, "data": data})

    def pytest_runtest_logreport(self, report: Any) -> None:
        """Send every phase's report to the parent as it ends."""
        self._write("test", report)

    def pytest_collectreport(self, report: Any) -> None:
        """Send a collection error: the parent reports it on the tests it asked for."""
        if report.failed:
            self._write("collect", report)


class Driver(ReportWriter):
    """Runs the tests the parent asks for, one at a time, in the order it asks."""

    def __init__(self, commands: IO[str], reports: IO[str], watchdog: Watchdog) -> None:
        super().__init__(reports)
        self.commands = commands
        self.watchdog = watchdog

    def pytest_runtestloop(self, session: Any) -> bool:
        """Run the tests the parent asks for, in its order, instead of pytest's own loop."""
        self.watchdog.disarm()
        items = {item.nodeid: item for item in session.items}
        for line in self.commands:
            try:
                command = json.loads(line)
            except json.JSONDecodeError:
                continue
            if command.get("op") != "run":
                continue
            nodeid = command.get("nodeid")
            item = items.pop(nodeid, None)
            if item is None:
                self.send({"kind": "missing", "nodeid": nodeid})
                continue
            nextitem = items.get(command.get("next") or "")
            self.watchdog.arm(float(command.get("timeout") or 0))
            self.send({"kind": "start", "nodeid": nodeid})
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            self.watchdog.disarm()
            self.send({"kind": "done", "nodeid": nodeid})
        return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
