"""The watchdog: a daemon thread that looks at the wait-for graph while a test runs.

Its verdicts (a cycle, or every thread of the test blocked, that lasts
``deadlock_timeout``) are reports (:mod:`.report`) that fail the test; the
threads concerned are unwound with DeadlockError (:func:`._waitgraph.unwind`).
"""

from __future__ import annotations

import _thread
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from .._frames import find_cycle
from . import _waitgraph as wg
from .report import cycle_report, stuck_report

if TYPE_CHECKING:
    from . import _gevent as gw


def guarded_join(thread: threading.Thread, seconds: float, guard: str) -> bool:
    """``thread.join(seconds)`` for a test helper whose patience running out fails the test.

    To the watchdog it is a join with no timeout: when every thread of the test is
    blocked, the test fails after ``deadlock_timeout``, not after ``seconds``
    (``guard`` says so in the report).  Whether the thread ended.
    """
    __tracebackhide__ = True
    return wg.guarded_join(thread, seconds, guard)


def guarded_watch(thread: threading.Thread, guard: str) -> contextlib.AbstractContextManager[Callable[[], None]]:
    """While a test helper polls ``thread`` (then fails the test): the calling thread waits for
    ``thread`` with no timeout, to the watchdog; yields a check to call between polls."""
    return wg.guarded("watch", thread, guard)


class TestState:
    """What the watchdog knows about the test that runs now."""

    __slots__ = ("item", "thread", "baseline", "reports", "reported", "installed", "timeout_snapshot",
                 "timeout_site", "gevent", "unwinding")

    def __init__(self, item: pytest.Item, thread: threading.Thread, baseline: set[threading.Thread]) -> None:
        self.item = item
        self.thread = thread
        self.baseline = baseline  # the threads alive when it began
        self.reports: list[str] = []  # the watchdog's verdicts
        self.reported = 0  # how many of them a phase's report already gave
        self.installed = False
        self.timeout_snapshot: str | None = None
        # Where the student's code was when pytest-timeout fired: ("running" or "waiting", line).
        self.timeout_site: tuple[str, str] | None = None
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
            ident: wait for ident, wait in waits.items()
            if not wait.timed and ident not in unwound and wait.still_blocked()
        }
        if not blocked:
            return
        started = [t.ident for t in threading.enumerate()]  # the order they started in
        cycle = find_cycle(waits_for(blocked), order=[i for i in started if i in blocked])
        if cycle and now - max(blocked[i].since for i in cycle) >= self.timeout and (
            still_blocked(cycle, blocked)
        ):
            report = cycle_report(cycle, blocked, self.timeout)
            self._fire(test, cycle, report)
            return
        members = test_threads(test)
        if members is None or not members:
            return
        idle = idle_pool_threads(members - set(blocked))
        stuck = sorted(members - idle)
        if stuck and all(ident in blocked for ident in stuck) and (
            now - max(blocked[i].since for i in stuck) >= self.timeout
        ) and still_blocked(stuck, blocked):
            report = stuck_report(stuck, blocked, self.timeout, sorted(idle))
            self._fire(test, stuck, report)

    def _fire(self, test: TestState, idents: list[int], report: str) -> None:
        test.unwinding.update(idents)
        test.reports.append(report)  # first: the test must fail even if the threads unwind fast
        for ident in idents:
            wg.unwind(ident, report)


def still_blocked(idents: list[int], blocked: dict[int, wg.Wait]) -> bool:
    """Whether each of ``idents`` is still in the wait it was seen in, and that wait unmet.

    Looked at after the idle pools: a pool's callback wakes its waiter before the
    pool's cache empties, so a pool seen idle has already released whom it wakes.
    """
    now = wg.waits()
    return all(now.get(i) is blocked[i] and blocked[i].still_blocked() for i in idents)


def waits_for(blocked: dict[int, wg.Wait]) -> dict[int, int]:
    """The wait-for graph among ``blocked``: ident -> the ident it waits for (owners, joins)."""
    edges = {}
    for ident, wait in blocked.items():
        owner = wait.owner()
        if owner is not None:
            edges[ident] = owner
    return edges


# The threads a multiprocessing.Pool runs in the parent process (Pool._handle_workers etc.).
_POOL_THREADS = frozenset({"Pool._handle_workers", "Pool._handle_tasks", "Pool._handle_results"})


def idle_pool_threads(idents: set[int]) -> set[int]:
    """Those of ``idents`` that are the threads of a ``multiprocessing`` pool with no task left.

    A pool's threads reach the rest of the process only through the results of its
    tasks (their callbacks, ``get()``, ``wait()``): with every result delivered
    (the pool's cache empty), they can wake nobody, whatever its workers do.
    A task is in the cache before it is queued, so no new one can be missed.
    """
    if not idents or "multiprocessing.pool" not in sys.modules:
        return set()
    pool_cache = sys.modules["multiprocessing.pool"]._PoolCache
    idle = set()
    for thread in threading.enumerate():
        if thread.ident not in idents:
            continue
        target = getattr(thread, "_target", None)
        if getattr(target, "__qualname__", None) not in _POOL_THREADS:
            continue
        caches = [a for a in getattr(thread, "_args", ()) if isinstance(a, pool_cache)]
        if caches and not any(len(cache) for cache in caches):
            idle.add(thread.ident)
    return idle


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
