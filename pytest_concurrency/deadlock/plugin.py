"""Deadlocks in real runs: wait-for cycles, threads nobody can wake, lock-order inversions.

Outside ``schedule.run`` tests use real threads.  While a test runs (setup, call
and teardown), the ``threading`` primitives it creates are watched (see
:mod:`pytest_concurrency.deadlock._waitgraph`), and a watchdog thread looks at the
wait-for graph every few hundredths of a second:

- a **cycle** (thread 1 holds A and waits for B, thread 2 holds B and waits for
  A; joins count as waits for the joined thread) that lasts
  ``deadlock_timeout`` seconds, or
- **every thread of the test** (its own thread and every thread started since
  it began) blocked with no timeout for ``deadlock_timeout`` seconds, on locks,
  conditions, events, semaphores, barriers, queues or joins: a lost wakeup, a
  join on a thread that waits forever,

fails the test with a report that names each thread, what it holds, what it
waits for and where, with the stacks.  Each of those threads gets a
:class:`~pytest_concurrency.errors.DeadlockError` raised from its blocked call,
so none stays stuck and the run goes on::

    $ pytest --deadlock-timeout 0.5 tests/test_bank.py
    E   pytest_concurrency.errors.DeadlockError: deadlock: 2 threads wait for each other ...

**Potential deadlocks**: when a test took lock A then B in one place and B then
A in another (in any threads), the test is reported lockdep-style with both
acquisition sites.  In exercise tests (and tests marked ``hygiene``, see
:mod:`pytest_concurrency.hygiene`) it fails the test; elsewhere it is a
:class:`PotentialDeadlockWarning`.

**The last guard**: exercise tests without a ``timeout`` marker get
``pytest.mark.timeout(exercise_timeout, method="signal")`` from pytest-timeout:
the signal method fails only the test that hangs (the thread method would end the
whole run).  When it fires, the message starts with the line of the student's
code that was running, the wait-for graph and every thread's stack are added,
and the blocked threads are unwound.  After such a hang in the student's code,
the exercise's other tests get ``timeout_after_hang`` seconds instead, within
what is left of ``exercise_budget`` (counted from the exercise's first test);
once that is spent, they fail at once, without running, with one line that says why.

``--deadlock-timeout 0`` turns the watchdog off (the instrumentation stays, for
the lock-order check).
"""

from __future__ import annotations

import math
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Generator
from types import ModuleType
from typing import Any

import pytest

from .._config import Setting, add, read, seconds
from .._frames import call_site, explain_error, running_line, student_frame
from ..errors import DeadlockError
from ..hygiene.scope import (
    forget_threads_at_start,
    has_marker,
    is_strict,
    threads_at_start,
)
from ..layout import exercise_name, in_exercise_folder
from . import _waitgraph as wg
from .report import inversion_report, snapshot_report
from .watchdog import TestState, Watchdog, test_threads

DEFAULT_DEADLOCK_TIMEOUT = 1.0
# Five times the slowest solution test (5 s: a memcached client's timeouts), not more: a
# student's loop costs this once, then timeout_after_hang for each other test of the exercise.
DEFAULT_EXERCISE_TIMEOUT = 27.0
DEFAULT_TIMEOUT_AFTER_HANG = 2.0
# From an exercise's first test. It only counts once a test hung: correct code never meets it
# (the slowest solution exercise, 18, takes 14 s on a loaded machine).
DEFAULT_EXERCISE_BUDGET = 30.0
# Less than this left of the budget: the test is not run (it could only time out).
MIN_SHARE = 0.5


def _seconds_setting(name: str, default: float, help: str, env: str | None = None) -> Setting[float]:
    """An option and ini key of seconds, named alike: ``deadlock_timeout``, ``--deadlock-timeout``."""
    return Setting(
        name, option="--" + name.replace("_", "-"), metavar="S", parse=seconds,
        default=default, shown_default=f"{default:g}", help=help, env=env,
    )


DEADLOCK_TIMEOUT = _seconds_setting(
    "deadlock_timeout", DEFAULT_DEADLOCK_TIMEOUT,
    "real (uncontrolled) runs: a wait-for cycle, or every thread of the test blocked, "
    "that lasts S seconds fails the test and unwinds the blocked threads "
    "(0 turns the watchdog off)",
)
EXERCISE_TIMEOUT = _seconds_setting(
    "exercise_timeout", DEFAULT_EXERCISE_TIMEOUT,
    "pytest-timeout for exercise tests that have no timeout marker, with the signal "
    "method (only the hung test fails); 0 for none",
)
TIMEOUT_AFTER_HANG = _seconds_setting(
    "timeout_after_hang", DEFAULT_TIMEOUT_AFTER_HANG,
    "once an exercise test has timed out while the student's code ran, the exercise's "
    "other tests get this limit instead of exercise_timeout (a loop costs seconds, "
    "not minutes); 0 keeps exercise_timeout",
)
EXERCISE_BUDGET = _seconds_setting(
    "exercise_budget", DEFAULT_EXERCISE_BUDGET,
    "once an exercise test has timed out while the student's code ran, the exercise's other "
    "tests share what is left of S seconds counted from its first test, and are reported "
    "as not run once it is spent (a hung exercise reports within S); 0 for no budget",
    env="PYTEST_CONCURRENCY_EXERCISE_BUDGET",
)

PYTEST_TIMEOUT_PREFIX = "Timeout (>"
_PYTEST_TIMEOUT_SECONDS = re.compile(r"Timeout \(>([0-9.]+)s\)")


class PotentialDeadlockWarning(pytest.PytestWarning):
    """Two locks were taken in opposite orders: with unlucky timing, a deadlock."""


class EventLoopBlockedWarning(pytest.PytestWarning):
    """A greenlet ran for more than half a second without yielding to gevent's event loop."""


# ---------------------------------------------------------------- pytest hooks

_watchdog_key = pytest.StashKey[Watchdog]()
_test_key = pytest.StashKey[TestState]()
# The pytest-timeout limit we gave an exercise test (collection), and the shorter one it got
# because another test of its exercise hung before: ("given 2 s instead of 27 s", that test's name).
_limit_key = pytest.StashKey[float]()
_short_key = pytest.StashKey[tuple[str, str]]()
# exercise folder -> its first test that timed out in the student's code, and where:
# ("test_x", "running thread_pool.py:41 in submit: `while True:`").
_hung_key = pytest.StashKey[dict[str, tuple[str, str]]]()
# exercise folder -> when its first test began (the budget's clock).
_began_key = pytest.StashKey[dict[str, float]]()
# Why a test is not run: its exercise's budget was spent after a hang.
_not_run_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """--deadlock-timeout, --exercise-timeout, --timeout-after-hang, --exercise-budget and their ini keys."""
    add(parser, DEADLOCK_TIMEOUT, EXERCISE_TIMEOUT, TIMEOUT_AFTER_HANG, EXERCISE_BUDGET)


def deadlock_timeout(config: pytest.Config) -> float:
    return read(config, DEADLOCK_TIMEOUT)


def exercise_timeout(config: pytest.Config) -> float:
    return read(config, EXERCISE_TIMEOUT)


def pytest_configure(config: pytest.Config) -> None:
    """Check the timeouts before anything runs, and start the watchdog that waits for stuck tests."""
    config.addinivalue_line(
        "markers",
        "no_deadlock_detection: do not watch this test's threading primitives "
        "(for tests that time their own blocking calls)",
    )
    timeout = deadlock_timeout(config)
    exercise_timeout(config)  # a bad value is a usage error now, not at the first test
    read(config, TIMEOUT_AFTER_HANG)
    read(config, EXERCISE_BUDGET)
    config.stash[_hung_key] = {}
    config.stash[_began_key] = {}
    wg.SLICE = max(0.01, min(0.05, timeout / 4)) if timeout > 0 else 0.05
    watchdog = Watchdog(timeout)
    config.stash[_watchdog_key] = watchdog
    if hasattr(signal, "SIGALRM"):
        config.pluginmanager.register(AlarmOutsideReports(), "concurrency-alarm-outside-reports")
    if not _gevent_patched():
        # Under monkey patching (an isolated child) its "thread" would be a greenlet that keeps
        # the event loop busy (no LoopExit, ever); and there is nothing for it to watch.
        watchdog.start()


class AlarmOutsideReports:
    """pytest-timeout's signal method raises wherever its alarm finds the main thread.

    Found making a phase's report (pytest parses the test's source there), it
    broke the whole run with an INTERNALERROR (on 3.11 "AST constructor
    recursion depth mismatch"), and the run ended without its score table: seen
    under load with the 2 s limits after a hang.  While a report is made, an
    alarm is only noted; after setup or call it fires again at the start of the
    next phase, which it still limits, and after teardown the test is over.
    """

    _owed = pytest.StashKey[bool]()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Make the report with the alarm held back."""
        if signal.getitimer(signal.ITIMER_REAL)[0] == 0 or (
            threading.current_thread() is not threading.main_thread()
        ):
            return (yield)
        fired: list[int] = []
        handler = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
        try:
            return (yield)
        finally:
            signal.signal(signal.SIGALRM, handler)
            if fired and call.when != "teardown":
                item.stash[self._owed] = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        """An alarm held back while setup's report was made fires now."""
        self._fire_owed(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        """An alarm held back while a report was made fires now."""
        self._fire_owed(item)

    def _fire_owed(self, item: pytest.Item) -> None:
        if item.stash.get(self._owed, False):
            del item.stash[self._owed]
            signal.setitimer(signal.ITIMER_REAL, 0.001)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the watchdog with the session."""
    watchdog = config.stash.get(_watchdog_key, None)
    if watchdog is not None:
        watchdog.stop()


def _gevent() -> ModuleType:
    """Our gevent watch, imported only once gevent itself is (most runs never need it)."""
    from . import _gevent as _gevent_watch

    return _gevent_watch


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("threading"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give exercise tests pytest-timeout's signal method as the last guard against a hang."""
    seconds = exercise_timeout(config)
    if seconds <= 0 or not config.pluginmanager.has_plugin("timeout"):
        return
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        return  # pytest-timeout would fall back to its thread method, which ends the run
    if config.getoption("timeout", None) or config.getini("timeout"):
        return  # the user chose a timeout for every test
    for item in items:
        if in_exercise_folder(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(seconds, method="signal"))
            item.stash[_limit_key] = seconds


def _shorten_after_a_hang(item: pytest.Item) -> None:
    """An exercise whose student code hung once: its other tests get the short limit, within
    what is left of its budget, or are not run once that is spent."""
    limit = item.stash.get(_limit_key, None)
    if limit is None:
        return
    exercise = exercise_name(item.path) or ""
    now = time.monotonic()
    began = item.config.stash[_began_key].setdefault(exercise, now)
    hung = item.config.stash[_hung_key].get(exercise)
    if hung is None or hung[0] == item.name:
        return
    budget = read(item.config, EXERCISE_BUDGET)
    left = budget - (now - began) if budget > 0 else math.inf
    if left < MIN_SHARE:
        item.stash[_not_run_key] = (
            f"not run: {exercise} used its {budget:g} s budget (--exercise-budget) after {hung[0]} hung; "
            f"your code was {hung[1]}"
        )
        return
    short = read(item.config, TIMEOUT_AFTER_HANG)
    short = short if 0 < short < limit else limit
    if left < short:
        short = math.floor(left * 10) / 10
        why = f", what was left of the exercise's {budget:g} s budget,"
    else:
        why = f" instead of {limit:g} s"
    if short >= limit:
        return
    # First among the item's markers: pytest-timeout reads the closest one when the test starts.
    item.add_marker(pytest.mark.timeout(short, method="signal"), append=False)
    item.stash[_short_key] = (f"given {short:g} s{why}", hung[0])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test of an exercise that spent its budget fails at once, with the one line that says why."""
    reason = item.stash.get(_not_run_key, None)
    if reason is not None:
        pytest.fail(reason, pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator:
    """Instrument threading for the test, let the watchdog see it, and judge what is left at its end."""
    watchdog = item.config.stash[_watchdog_key]
    test = TestState(item, threading.current_thread(), threads_at_start(item))
    item.stash[_test_key] = test
    wg.reset_order()
    _shorten_after_a_hang(item)
    if not has_marker(item, "no_deadlock_detection") and not _gevent_patched():
        wg.install()
        test.installed = True
    if "gevent" in sys.modules:
        test.gevent = _gevent().begin()
    watchdog.test = test
    if wg._waits:
        watchdog.wake()  # waits recorded before the test began: their deadlines count now
    try:
        return (yield)
    finally:
        forget_threads_at_start(item)
        watchdog.test = None
        if test.gevent is not None:
            _gevent().end()
        if test.installed:
            wg.uninstall()
        if wg._unwound or wg.threads_that_took_locks() > 1:  # nothing to forget in a test that started no thread
            wg.forget_unwound([test.thread.ident or 0])
            alive = {t.ident for t in threading.enumerate()}
            wg.forget_unwound([i for i in wg.unwound_idents() if i not in alive])
            wg.forget_dead_threads(alive)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
    """Our verdicts on the phase that just ended, given as if the phase had raised them.

    One plain hook instead of a wrapper around each phase: a phase that ended
    with nothing for us to say costs one call.  A verdict replaces
    ``call.excinfo`` before any report is made, so every other plugin (xfail,
    grading, --pdb) sees it as the phase's own error.
    """
    if call.excinfo is not None:
        _explain(call.excinfo.value)
    test = item.stash.get(_test_key, None)
    if test is None:
        return _deadlock_report(item, call)
    if (call.excinfo is None and len(test.reports) == test.reported and test.gevent is None
            and (call.when != "call" or not wg._inversions)):
        return None
    verdict = _verdict(item, call, test)
    if verdict is None:
        return _deadlock_report(item, call)
    call.excinfo = _raised(verdict)
    if not getattr(verdict, "from_watchdog", False):
        return None  # pytest makes the report of the new error
    # Raised by us, not by the test: its traceback would only show the plugin.
    report = pytest.TestReport.from_item_and_call(item, call)
    report.longrepr = f"DeadlockError: {verdict}"
    return report


def _deadlock_report(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
    """A deadlock that unwound the test's threads, told once: where the test was, then the report.

    The report names every thread of the cycle, what it holds and waits for,
    and their stacks: pytest's traceback (the test's source, then the line of
    the cycle) would only say it again.
    """
    if call.excinfo is None or not isinstance(call.excinfo.value, DeadlockError):
        return None
    sites = [
        call_site(str(entry.path), entry.lineno + 1, entry.name)
        for entry in call.excinfo.traceback
        if str(entry.path) == str(item.path)
    ]
    report = pytest.TestReport.from_item_and_call(item, call)
    where = f"raised at {sites[-1]}\n" if sites else ""
    report.longrepr = f"{where}DeadlockError: {call.excinfo.value}"
    return report


def _warn_at_test(item: pytest.Item, warning: Warning) -> None:
    """A warning shown at the test's own line, not at a line of the plugin."""
    line = item.location[1]
    warnings.warn_explicit(warning, type(warning), str(item.path), (line or 0) + 1)


def _explain(error: BaseException) -> None:
    """A raw error of a common misuse (``Pool not running``) gets a note that explains it."""
    explanation = explain_error(error)
    notes = getattr(error, "__notes__", ())
    if explanation is not None and explanation not in notes:
        error.add_note(explanation)


def _verdict(item: pytest.Item, call: pytest.CallInfo[None], test: TestState) -> BaseException | None:
    """The error that replaces the phase's outcome, or None to leave it."""
    new = test.reports[test.reported:]
    test.reported = len(test.reports)
    error = call.excinfo.value if call.excinfo is not None else None
    if isinstance(error, DeadlockError):
        _let_unwound_threads_end(test)  # (the test thread was unwound too)
        return None
    if new:
        _let_unwound_threads_end(test)
        return _watchdog_error(new[0])
    if error is not None:
        if "gevent" in sys.modules and _gevent().is_loop_exit(error):
            return _watchdog_error(_gevent().loop_exit_report(error))
        message = getattr(error, "msg", "")
        if isinstance(message, str) and message.startswith(PYTEST_TIMEOUT_PREFIX):
            return _merge_timeout(item, test, error)
        _check_event_loop(item, test, call.when, failed=True)
        return None
    failure = _check_event_loop(item, test, call.when, failed=False)
    if failure is None and call.when == "call":
        failure = _check_order(item)
    return failure


def _raised(error: BaseException) -> pytest.ExceptionInfo[BaseException]:
    try:
        raise error
    except BaseException:
        return pytest.ExceptionInfo.from_current()


# How long a failing phase waits for the threads it unwound to end (each notices within a slice).
UNWIND_PATIENCE = 2.0


def _let_unwound_threads_end(test: TestState) -> None:
    """The run goes on clean: the next test does not start while the unwound threads still end."""
    deadline = time.monotonic() + UNWIND_PATIENCE
    me = threading.current_thread()
    for thread in threading.enumerate():
        if thread.ident in test.unwinding and thread is not me:
            thread.join(max(0.0, deadline - time.monotonic()))


def _check_event_loop(item: pytest.Item, test: TestState, when: str, failed: bool) -> BaseException | None:
    """Greenlets that blocked gevent's loop: the failure of a strict test; a warning otherwise.

    A phase that failed anyway keeps its own error, with the report as a section.
    """
    if test.gevent is None:
        return None
    report = _gevent().blocked_report(test.gevent)
    if report is None:
        return None
    if failed:
        item.add_report_section(when, "gevent event loop", report)
    elif is_strict(item):
        return pytest.fail.Exception(report, pytrace=False)
    else:
        _warn_at_test(item, EventLoopBlockedWarning(report))
    return None


def _watchdog_error(report: str) -> DeadlockError:
    error = DeadlockError(report)
    error.from_watchdog = True  # type: ignore[attr-defined]
    return error


@pytest.hookimpl(wrapper=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Generator:
    """Take our snapshot the moment pytest-timeout's signal fires, before anything unwinds."""
    result = yield
    test = item.stash.get(_test_key, None)
    theirs = signal.getsignal(signal.SIGALRM) if hasattr(signal, "SIGALRM") else None
    if test is not None and callable(theirs) and threading.current_thread() is threading.main_thread():

        def snapshot_then_fail(signum: int, frame: Any) -> None:
            __tracebackhide__ = True
            test.timeout_site = _student_site(test, frame)
            test.timeout_snapshot = snapshot_report(test.thread.ident, _members(test), frame)
            theirs(signum, frame)

        signal.signal(signal.SIGALRM, snapshot_then_fail)
    return result


def _members(test: TestState) -> set[int | None]:
    threads = test_threads(test)
    members: set[int | None] = set(threads) if threads else {test.thread.ident}
    return members


def _student_site(test: TestState, interrupted: Any = None) -> tuple[str, str] | None:
    """Where the student's code was: ("running" or "waiting at", its line), or None.

    The test's own thread first (``interrupted``: its frame under the signal),
    then the threads it started, those not blocked in a watched wait first.
    """
    frames = sys._current_frames()
    main = test.thread.ident
    if interrupted is not None and main is not None:
        frames[main] = interrupted
    members = _members(test)
    waits = wg.waits()
    started = [t.ident for t in threading.enumerate() if t.ident in members and t.ident != main]
    order = [main, *[i for i in started if i not in waits], *[i for i in started if i in waits]]
    for ident in order:
        frame = student_frame(frames.get(ident or -1))
        if frame is not None:
            return ("waiting at" if ident in waits else "running", running_line(frame))
    return None


def _merge_timeout(item: pytest.Item, test: TestState, error: BaseException) -> BaseException:
    """pytest-timeout's failure, led by the student's line, with the wait-for graph; the
    blocked threads are unwound.  The first such hang of an exercise shortens its other tests."""
    site = test.timeout_site or _student_site(test)
    report = test.timeout_snapshot or snapshot_report(test.thread.ident, _members(test))
    for ident in test_threads(test) or ():
        if ident != test.thread.ident:
            wg.unwind(ident, f"unwound after pytest-timeout fired in {test.item.nodeid}")
    message = str(getattr(error, "msg", ""))
    found = _PYTEST_TIMEOUT_SECONDS.match(message)
    limit = float(found.group(1)) if found else item.stash.get(_limit_key, 0.0)
    head = f"{item.name} did not finish in {limit:g} s"
    short = item.stash.get(_short_key, None)
    if short is not None:
        head += f" ({short[0]} because {short[1]} hung before)"
    if site is not None:
        head += f"; your code was {site[0]} {site[1]}"
        exercise = exercise_name(item.path) if in_exercise_folder(item.path) else None
        if exercise is not None:
            item.config.stash[_hung_key].setdefault(exercise, (item.name, f"{site[0]} {site[1]}"))
    else:
        head += "; none of your code was on the stacks of its threads (it was in the test itself, or in native code)"
    return pytest.fail.Exception(f"{head}\n{message}\n\n{report}", pytrace=False)


def _check_order(item: pytest.Item) -> BaseException | None:
    """Lock-order inversions of the test: the failure of a strict test; a warning otherwise."""
    inversions = wg.order_inversions()
    if not inversions:
        return None
    report = inversion_report(inversions)
    if is_strict(item):
        return pytest.fail.Exception(report, pytrace=False)
    _warn_at_test(item, PotentialDeadlockWarning(report))
    return None
