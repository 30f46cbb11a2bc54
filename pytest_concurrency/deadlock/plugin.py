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
whole run).  When it fires, the wait-for graph and every thread's stack are
added to its message, and the blocked threads are unwound.

``--deadlock-timeout 0`` turns the watchdog off (the instrumentation stays, for
the lock-order check).
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
import warnings
from collections.abc import Generator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from .._config import Setting, add, read, seconds
from ..errors import DeadlockError
from ..hygiene.scope import (
    forget_threads_at_start,
    has_marker,
    is_strict,
    threads_at_start,
)
from ..layout import in_exercise_folder
from . import _waitgraph as wg

if TYPE_CHECKING:
    from . import _gevent as gw

DEFAULT_DEADLOCK_TIMEOUT = 1.0
DEFAULT_EXERCISE_TIMEOUT = 60.0
DEADLOCK_TIMEOUT = Setting(
    "deadlock_timeout", option="--deadlock-timeout", metavar="S", parse=seconds,
    default=DEFAULT_DEADLOCK_TIMEOUT, shown_default="1.0",
    help="real (uncontrolled) runs: a wait-for cycle, or every thread of the test blocked, "
         "that lasts S seconds fails the test and unwinds the blocked threads "
         "(0 turns the watchdog off)",
)
EXERCISE_TIMEOUT = Setting(
    "exercise_timeout", option="--exercise-timeout", metavar="S", parse=seconds,
    default=DEFAULT_EXERCISE_TIMEOUT, shown_default="60",
    help="pytest-timeout for exercise tests that have no timeout marker, with the signal "
         "method (only the hung test fails); 0 for none",
)
PYTEST_TIMEOUT_PREFIX = "Timeout (>"


class PotentialDeadlockWarning(pytest.PytestWarning):
    """Two locks were taken in opposite orders: with unlucky timing, a deadlock."""


class EventLoopBlockedWarning(pytest.PytestWarning):
    """A greenlet ran for more than half a second without yielding to gevent's event loop."""


class TestState:
    """What the watchdog knows about the test that runs now."""

    __slots__ = ("item", "thread", "baseline", "reports", "reported", "installed", "timeout_snapshot",
                 "gevent", "unwinding")

    def __init__(self, item: pytest.Item, thread: threading.Thread, baseline: set[threading.Thread]) -> None:
        self.item = item
        self.thread = thread
        self.baseline = baseline  # the threads alive when it began
        self.reports: list[str] = []  # the watchdog's verdicts
        self.reported = 0  # how many of them a phase's report already gave
        self.installed = False
        self.timeout_snapshot: str | None = None
        self.gevent: gw.Watch | None = None
        self.unwinding: set[int] = set()  # idents of the threads the watchdog unwound


class Watchdog:
    """A daemon thread that looks at the wait-for graph while a test runs.

    It sleeps until the earliest moment a verdict is possible: the deadline
    (start + ``timeout``) of the oldest recorded wait with no timeout; a new
    recorded wait wakes it (``_waitgraph.on_wait``).  With no such wait it
    does not wake at all.  Past a deadline with no verdict (some thread still
    runs) it looks again every ``tick``.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = max(0.01, min(0.1, timeout / 5))
        self.test: TestState | None = None
        self._stop = False
        # A binary semaphore on a raw lock: locked = nothing new to look at.
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self._previous_on_wait: Any = None
        self.thread = threading.Thread(
            target=self._run, name="pytest-concurrency deadlock watchdog", daemon=True
        )

    def start(self) -> None:
        if self.timeout > 0:
            previous = self._previous_on_wait = wg.on_wait
            wake = self.wake
            if previous is None:
                wg.on_wait = wake
            else:  # a pytester run inside a test: wake both watchdogs
                def both(wait: wg.Wait) -> None:
                    wake(wait)
                    previous(wait)
                wg.on_wait = both
            self.thread.start()

    def wake(self, wait: Any = None) -> None:
        with contextlib.suppress(RuntimeError):  # already awake
            self._wake.release()

    def stop(self) -> None:
        self._stop = True
        self.wake()
        if self.thread.is_alive():
            if wg.on_wait is not None:
                wg.on_wait = self._previous_on_wait
            self.thread.join(2)

    def next_look(self) -> float | None:
        """Seconds until a verdict may be possible; None: not until a wait is recorded."""
        if self.test is None:
            return None
        soonest = None
        for wait in list(wg._waits.values()):
            if not wait.timed:
                deadline = wait.since + self.timeout
                soonest = deadline if soonest is None or deadline < soonest else soonest
        if soonest is None:
            return None
        return max(soonest - time.monotonic(), self.tick if soonest <= time.monotonic() else 0.0)

    def _run(self) -> None:
        while not self._stop:
            delay = self.next_look()
            self._wake.acquire(True, -1 if delay is None else max(delay, 0.001))
            test = self.test
            if test is None or self._stop:
                continue
            try:
                self.look(test)
            except Exception as error:  # never let the watchdog die silently
                print(f"pytest-concurrency: deadlock watchdog error: {error!r}", file=sys.stderr)

    def look(self, test: TestState) -> None:
        now = time.monotonic()
        waits = wg.waits()
        unwound = wg.unwound_idents()
        blocked = {
            ident: wait for ident, wait in waits.items() if not wait.timed and ident not in unwound
        }
        if not blocked:
            return
        cycle = find_cycle(blocked)
        if cycle and now - max(blocked[i].since for i in cycle) >= self.timeout:
            report = cycle_report(cycle, blocked, self.timeout)
            self._fire(test, cycle, report)
            return
        members = test_threads(test)
        if members is None or not members:
            return
        if all(ident in blocked for ident in members) and (
            now - max(blocked[i].since for i in members) >= self.timeout
        ):
            report = stuck_report(sorted(members), blocked, self.timeout)
            self._fire(test, sorted(members), report)

    def _fire(self, test: TestState, idents: list[int], report: str) -> None:
        test.unwinding.update(idents)
        test.reports.append(report)  # first: the test must fail even if the threads unwind fast
        for ident in idents:
            wg.unwind(ident, report)


def find_cycle(blocked: dict[int, wg.Wait]) -> list[int] | None:
    """Thread idents of a wait-for cycle among ``blocked`` (owner edges and joins), or None."""
    waits_for: dict[int, int] = {}
    for ident, wait in blocked.items():
        if wait.kind == "acquire":
            owner = wait.target._owner
        elif wait.kind == "join":
            owner = wait.target.ident
        else:
            continue
        if owner is not None:
            waits_for[ident] = owner
    for start in waits_for:
        path: list[int] = []
        node: int | None = start
        while node is not None and node in waits_for and node not in path:
            path.append(node)
            node = waits_for[node]
        if node is not None and node in path:
            return path[path.index(node):]
    return None


def test_threads(test: TestState) -> set[int] | None:
    """Idents of the test's own thread and of every thread started since it began.

    None while a thread is being started (it cannot be blocked yet, but is not
    running either: no verdict).
    """
    if getattr(threading, "_limbo", None):
        return None
    members = {test.thread.ident} if test.thread.is_alive() else set()
    for thread in threading.enumerate():
        if thread not in test.baseline and thread.ident is not None:
            members.add(thread.ident)
    members.discard(None)
    return members  # type: ignore[return-value]


def _thread_names() -> dict[int | None, str]:
    return {t.ident: t.name for t in threading.enumerate()}


def _holds(ident: int) -> list[wg.Held]:
    return wg.held_by_thread().get(ident, [])


def _describe_thread(ident: int, wait: wg.Wait | None, names: dict, frames: dict) -> str:
    name = names.get(ident, f"thread {ident}")
    frame = frames.get(ident)
    lines = [f"  thread {name!r}"]
    for held in _holds(ident):
        lines.append(f"      holds {held.lock.describe()}")
        lines.append(f"          taken at {wg.format_site(held.site)}")
    if wait is not None:
        lines.append(f"      waits for {wg.describe_wait(ident, wait, frame)}")
        user = wg.user_frame(frame)
        if user is not None:
            lines.append(f"          at {wg.format_site((user.f_code, user.f_lineno))}")
        owner = _owner_of(wait)
        if owner is not None:
            if wait.kind == "join":
                lines.append(f"          (and {names.get(owner, owner)!r} does not end)")
            else:
                lines.append(f"          held by {names.get(owner, owner)!r}")
    return "\n".join(lines)


def _owner_of(wait: wg.Wait) -> int | None:
    if wait.kind == "acquire":
        return wait.target._owner
    if wait.kind == "join":
        return wait.target.ident
    return None


def _stacks(idents: list[int], names: dict, frames: dict) -> str:
    parts = ["", "Stacks:"]
    for ident in idents:
        parts.append(f"  thread {names.get(ident, ident)!r}:")
        parts.append(wg.format_stack(frames.get(ident), "    ").rstrip("\n"))
    return "\n".join(parts)


def cycle_report(cycle: list[int], blocked: dict[int, wg.Wait], timeout: float) -> str:
    names, frames = _thread_names(), sys._current_frames()
    wg.name_locks(frames.values())
    chain = " -> ".join(repr(names.get(i, i)) for i in [*cycle, cycle[0]])
    head = (
        f"deadlock: {len(cycle)} thread{'s' if len(cycle) > 1 else ''} wait for each other "
        f"in a cycle ({chain}), unchanged for {timeout:g} s (deadlock_timeout)."
    )
    if len(cycle) == 1:
        head = (
            f"deadlock: thread {names.get(cycle[0], cycle[0])!r} waits for a lock it holds "
            f"itself, unchanged for {timeout:g} s (deadlock_timeout). Use an RLock, or "
            "do not take the lock again."
        )
    body = [_describe_thread(i, blocked.get(i), names, frames) for i in cycle]
    tail = "\nEach thread of the cycle was unwound with DeadlockError."
    return "\n".join([head, "", *body, _stacks(cycle, names, frames), tail])


def stuck_report(members: list[int], blocked: dict[int, wg.Wait], timeout: float) -> str:
    names, frames = _thread_names(), sys._current_frames()
    wg.name_locks(frames.values())
    head = (
        f"deadlock: every thread of the test ({len(members)}) has been blocked for "
        f"{timeout:g} s (deadlock_timeout) and none of them can wake the others: "
        "a lost wakeup (notify or set before the wait, a missing release), or a join "
        "on a thread that waits forever."
    )
    body = [_describe_thread(i, blocked.get(i), names, frames) for i in members]
    tail = "\nEvery one of these threads was unwound with DeadlockError."
    return "\n".join([head, "", *body, _stacks(members, names, frames), tail])


def snapshot_report(test: TestState, interrupted: Any = None) -> str:
    """What each thread of the test was doing: for the pytest-timeout message.

    ``interrupted``: the test thread's frame that a signal handler interrupted.
    """
    names, frames = _thread_names(), sys._current_frames()
    if interrupted is not None:
        frames[test.thread.ident] = interrupted
    wg.name_locks(frames.values())
    waits = wg.waits()
    members = test_threads(test) or {test.thread.ident}
    lines = ["pytest-concurrency: the threads of the test when the timeout fired:", ""]
    for ident in sorted(i for i in members if i is not None):
        lines.append(_describe_thread(ident, waits.get(ident), names, frames))
        if ident not in waits:
            lines.append("      is not blocked on a watched primitive (running, sleeping, in I/O, or")
            lines.append("      blocked on a _thread lock or in native code)")
        lines.append(wg.format_stack(frames.get(ident), "      ").rstrip("\n"))
    replaced = wg.replaced_by_someone_else()
    if replaced:
        lines.append("")
        lines.append("The code under test replaced " + ", ".join(replaced) + ": its waits are not watched.")
    return "\n".join(lines)


def inversion_report(inversions: list[tuple[wg.OrderEdge, list[wg.OrderEdge]]]) -> str:
    parts = [
        "potential deadlock: locks taken in opposite orders (a lock-order inversion). "
        "The test passed this time, but with other timing these threads deadlock. "
        "Take the locks in one fixed order everywhere.",
    ]
    for closing, path in inversions:
        parts.append("")
        parts.append(f"  thread {closing.thread!r} took {closing.first.describe()}")
        parts.append(f"      at {wg.format_site(closing.first_site)}")
        parts.append(f"    then {closing.second.describe()}")
        parts.append(f"      at {wg.format_site(closing.second_site)}")
        for edge in path:
            parts.append(f"  while thread {edge.thread!r} took {edge.first.describe()}")
            parts.append(f"      at {wg.format_site(edge.first_site)}")
            parts.append(f"    then {edge.second.describe()}")
            parts.append(f"      at {wg.format_site(edge.second_site)}")
    return "\n".join(parts)


# ---------------------------------------------------------------- pytest hooks

_watchdog_key = pytest.StashKey[Watchdog]()
_test_key = pytest.StashKey[TestState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """--deadlock-timeout / deadlock_timeout and --exercise-timeout / exercise_timeout."""
    add(parser, DEADLOCK_TIMEOUT, EXERCISE_TIMEOUT)


def deadlock_timeout(config: pytest.Config) -> float:
    return read(config, DEADLOCK_TIMEOUT)


def exercise_timeout(config: pytest.Config) -> float:
    return read(config, EXERCISE_TIMEOUT)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_deadlock_detection: do not watch this test's threading primitives "
        "(for tests that time their own blocking calls)",
    )
    timeout = deadlock_timeout(config)
    exercise_timeout(config)  # a bad value is a usage error now, not at the first test
    wg.SLICE = max(0.01, min(0.05, timeout / 4)) if timeout > 0 else 0.05
    watchdog = Watchdog(timeout)
    config.stash[_watchdog_key] = watchdog
    if not _gevent_patched():
        # Under monkey patching (an isolated child) its "thread" would be a greenlet that keeps
        # the event loop busy (no LoopExit, ever); and there is nothing for it to watch.
        watchdog.start()


def pytest_unconfigure(config: pytest.Config) -> None:
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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator:
    watchdog = item.config.stash[_watchdog_key]
    test = TestState(item, threading.current_thread(), threads_at_start(item))
    item.stash[_test_key] = test
    wg.reset_order()
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
    test = item.stash.get(_test_key, None)
    if test is None:
        return None
    if (call.excinfo is None and len(test.reports) == test.reported and test.gevent is None
            and (call.when != "call" or not wg._inversions)):
        return None
    verdict = _verdict(item, call, test)
    if verdict is None:
        return None
    call.excinfo = _raised(verdict)
    if not getattr(verdict, "from_watchdog", False):
        return None  # pytest makes the report of the new error
    # Raised by us, not by the test: its traceback would only show the plugin.
    report = pytest.TestReport.from_item_and_call(item, call)
    report.longrepr = f"DeadlockError: {verdict}"
    return report


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
            return _merge_timeout(test, error)
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
        warnings.warn(EventLoopBlockedWarning(report), stacklevel=2)
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
            test.timeout_snapshot = snapshot_report(test, frame)
            theirs(signum, frame)

        signal.signal(signal.SIGALRM, snapshot_then_fail)
    return result


def _merge_timeout(test: TestState, error: BaseException) -> BaseException:
    """pytest-timeout's failure, with the wait-for graph; the blocked threads are unwound."""
    report = test.timeout_snapshot or snapshot_report(test)
    for ident in test_threads(test) or ():
        if ident != test.thread.ident:
            wg.unwind(ident, f"unwound after pytest-timeout fired in {test.item.nodeid}")
    return pytest.fail.Exception(f"{error.msg}\n\n{report}", pytrace=False)  # type: ignore[attr-defined]


def _check_order(item: pytest.Item) -> BaseException | None:
    """Lock-order inversions of the test: the failure of a strict test; a warning otherwise."""
    inversions = wg.order_inversions()
    if not inversions:
        return None
    report = inversion_report(inversions)
    if is_strict(item):
        return pytest.fail.Exception(report, pytrace=False)
    warnings.warn(PotentialDeadlockWarning(report), stacklevel=2)
    return None
