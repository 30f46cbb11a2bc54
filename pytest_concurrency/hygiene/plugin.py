"""Hygiene: after a test, nothing it started is left running, and no thread error is lost.

After each **strict** test, once its fixtures are torn down:

- threads the test started and left running,
- child processes left alive (dumped, see :mod:`pytest_concurrency.fixtures.processes`),
- greenlets left pending (when gevent is in use),
- exceptions raised in threads (nobody can join them out of a thread),

fail the test (an error at teardown, which takes its points back) with names
and stacks, and are cleaned up: blocked threads are unwound, running ones get
``SystemExit`` raised in them, processes are killed with their trees,
greenlets are killed.  The next test starts clean.

Strict tests are the exercise tests (items inside an ``NN_name`` folder), tests
marked ``@pytest.mark.hygiene``, and every test with ``hygiene_scope = all``
in the ini file.  Other tests are not failed, but:

- an exception in one of their threads stays pytest's usual warning;
- at the end of the session, nothing any test started is left running, and a
  non-daemon thread that a test left behind never keeps pytest from exiting
  (the run exits with its own status once the report is written).

Example::

    @pytest.mark.hygiene
    def test_my_pool_cleans_up():
        pool = MyPool(4)
        pool.close()            # a worker left alive here fails the test
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .._config import add, read
from .._frames import format_stack, renumber, thread_label, user_site
from ..deadlock import _waitgraph as wg
from ..errors import DeadlockError
from .scope import HYGIENE_SCOPE, forget_threads_at_start, is_strict, threads_at_start

if TYPE_CHECKING:
    from .processes import ProcessGuard

# Threads that end on their own (a timer just fired, a pool winding down) get this long.
THREAD_GRACE = 1.0
STOP_PATIENCE = 1.0


class ThreadError:
    """An exception raised in a thread, as text."""

    __slots__ = ("thread_name", "text")

    def __init__(self, thread_name: str, text: str) -> None:
        self.thread_name = thread_name
        self.text = text


class TestHygiene:
    """What one test started with, and the thread errors seen while it ran."""

    __slots__ = ("strict", "threads_before", "processes", "greenlets_before", "thread_errors")

    def __init__(self, strict: bool, threads_before: set[threading.Thread]) -> None:
        self.strict = strict
        self.threads_before = threads_before
        self.processes: ProcessGuard | None = None  # strict tests only, from their call on
        self.greenlets_before: set[int] | None = None
        self.thread_errors: list[ThreadError] = []


_hygiene_key = pytest.StashKey[TestHygiene]()


class SessionHygiene:
    """Session-wide: the excepthook, the threads left behind, the exit."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.current: TestHygiene | None = None
        self.left_behind: list[threading.Thread] = []
        from .processes import ProcessGuard

        self.session_processes = ProcessGuard()
        self.exit_status = 0
        self._previous_hook: Any = None

    # ---- exceptions in threads

    def install_hook(self) -> None:
        self._previous_hook = threading.excepthook
        threading.excepthook = self._excepthook

    def uninstall_hook(self) -> None:
        if threading.excepthook is self._excepthook:
            threading.excepthook = self._previous_hook

    def _excepthook(self, args: threading.ExceptHookArgs) -> None:
        if getattr(args.exc_value, "unwound_by_plugin", False):
            return  # the deadlock report already tells this story
        current = self.current
        if current is not None and current.strict:
            name = args.thread.name if args.thread is not None else "<unknown>"
            text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
            current.thread_errors.append(ThreadError(name, text))
            return
        self._previous_hook(args)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The hygiene_scope ini key."""
    add(parser, HYGIENE_SCOPE)


_session_key = pytest.StashKey[SessionHygiene]()


def pytest_configure(config: pytest.Config) -> None:
    """Check hygiene_scope now, and keep the session's record of what tests left behind."""
    config.addinivalue_line(
        "markers",
        "hygiene: fail this test on leaked threads, processes, greenlets, thread exceptions "
        "and lock-order inversions, as exercise tests do",
    )
    read(config, HYGIENE_SCOPE)  # a bad value is a usage error now, not at the first test
    session = SessionHygiene(config)
    config.stash[_session_key] = session
    _register_exit_guard(session)


def _greenlet_ids() -> set[int] | None:
    if "gevent" not in sys.modules:
        return None
    return {id(g) for g in _pending_greenlets()}


def _pending_greenlets() -> list[Any]:
    import gc

    from gevent import Greenlet

    return [o for o in gc.get_objects() if isinstance(o, Greenlet) and o and not o.dead]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator:
    """Watch the whole protocol for exceptions lost in threads; remember what a test left running."""
    session = item.config.stash[_session_key]
    strict = is_strict(item)
    test = TestHygiene(strict, threads_at_start(item))
    item.stash[_hygiene_key] = test
    session.current = test
    # Per test, so that it wraps pytest's own hook (which turns them into warnings).
    session.install_hook()
    try:
        return (yield)
    finally:
        forget_threads_at_start(item)
        session.uninstall_hook()
        session.current = None
        # Non-strict tests are not failed, but what they leave is remembered for the exit.
        for thread in threading.enumerate():
            if thread not in test.threads_before and not thread.daemon:
                session.left_behind.append(thread)


# Plain hooks, not wrappers: most tests are not strict, and for them these cost one call.
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Take the strict test's snapshot after its setup: long-lived fixtures' threads are not its leaks."""
    # What the test starts counts from here: fixtures of a wider scope may start
    # threads and servers during setup that live on after this test on purpose.
    test = item.stash.get(_hygiene_key, None)
    if test is not None and test.strict:
        from .processes import ProcessGuard

        test.threads_before = set(threading.enumerate())
        test.processes = ProcessGuard()
        test.greenlets_before = _greenlet_ids()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Fail a strict test that left threads, processes or greenlets behind, after its fixtures ended."""
    # trylast: after pytest's own teardown (the fixtures); not reached if that raised.
    test = item.stash.get(_hygiene_key, None)
    if test is None or not test.strict:
        return
    problems = check(item, test)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def check(item: pytest.Item, test: TestHygiene) -> list[str]:
    """Every leak of the test, described; each one is cleaned up."""
    problems = []
    threads = _leaked_threads(test)
    if threads:
        problems.append(_stop_threads(threads))
    if test.processes is not None:
        processes = test.processes.stop_survivors(grace=0.5)
        if processes:
            problems.append(processes)
    greenlets = _leaked_greenlets(test)
    if greenlets:
        problems.append(greenlets)
    for error in test.thread_errors:
        problems.append(
            f"exception in {thread_label(error.thread_name)}, which nobody could see (a thread's "
            f"exception is not raised by join): catch it in the thread and hand it over.\n\n{error.text}"
        )
    test.thread_errors.clear()
    return problems


def _leaked_threads(test: TestHygiene) -> list[threading.Thread]:
    deadline = time.monotonic() + THREAD_GRACE
    leaked = [t for t in threading.enumerate() if t not in test.threads_before]
    for thread in leaked:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in leaked if t.is_alive()]


def _async_raise(thread: threading.Thread, exception: type[BaseException]) -> None:
    if thread.ident is None:
        return
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exception))


def _stop_threads(threads: list[threading.Thread]) -> str:
    frames = sys._current_frames()
    waits = wg.waits()
    stacks = [frames.get(thread.ident or 0) for thread in threads]
    lines = [f"{len(threads)} thread(s) started by the test were still running after it:"]
    for thread, frame in zip(threads, stacks, strict=True):
        kind = "daemon" if thread.daemon else "non-daemon"
        lines.append(f"  {thread_label(thread.name)} ({kind})")
        wait = waits.get(thread.ident or 0)
        if wait is not None:
            wg.name_locks([wait.target], [frame])
            lines.append(f"    waits for {wg.describe_wait(thread.ident or 0, wait, frame)}")
            lines.append(f"      at {user_site(frame)}")
        lines.append("    stack:")
        lines.append(format_stack(frame, "      ").rstrip("\n"))
    message = "thread left running by the test, stopped by pytest-concurrency's hygiene check"
    for thread in threads:
        if thread.ident is not None and thread.ident in waits:
            wg.unwind(thread.ident, message)
        else:
            _async_raise(thread, SystemExit)
    deadline = time.monotonic() + STOP_PATIENCE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    lines.append(
        "Stop every thread you start (join it), also when something fails; "
        "a pool's shutdown must wait for its workers."
    )
    if stuck:
        lines.append(f"Could not stop {stuck} (blocked outside Python): left for the end of the session.")
    return renumber("\n".join(lines))


def _leaked_greenlets(test: TestHygiene) -> str | None:
    if test.greenlets_before is None and "gevent" not in sys.modules:
        return None
    before = test.greenlets_before or set()
    leaked = [g for g in _pending_greenlets() if id(g) not in before]
    if not leaked:
        return None
    import gevent

    lines = [f"{len(leaked)} greenlet(s) spawned by the test were still pending after it:"]
    for greenlet in leaked:
        lines.append(f"  {greenlet!r}")
        frame = getattr(greenlet, "gr_frame", None)
        if frame is not None:
            lines.append(format_stack(frame, "      ").rstrip("\n"))
    try:
        gevent.killall(leaked, block=True, timeout=STOP_PATIENCE)
    except Exception as error:  # a greenlet may refuse to die: say so, go on
        lines.append(f"  (killing them failed: {error!r})")
    lines.append("Join (or kill) every greenlet you spawn: gevent.joinall(greenlets).")
    return "\n".join(lines)


# ---------------------------------------------------------------- the end of the session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Kill the child processes that are still alive: nothing started by a test outlives the session."""
    hygiene = session.config.stash.get(_session_key, None)
    if hygiene is None:
        return
    hygiene.exit_status = int(exitstatus)
    watch = hygiene.session_processes
    watch.kill(watch.alive())


_exit_guards: list[SessionHygiene] = []


def _register_exit_guard(session: SessionHygiene) -> None:
    _exit_guards.append(session)
    if len(_exit_guards) == 1:
        with contextlib.suppress(AttributeError, RuntimeError):  # private API, or exiting already
            threading._register_atexit(_exit_without_waiting)  # type: ignore[attr-defined]


def _exit_without_waiting() -> None:
    """Runs before the interpreter waits for non-daemon threads: never wait for a leaked one."""
    stuck: list[threading.Thread] = []
    status = 0
    for session in _exit_guards:
        stuck.extend(t for t in session.left_behind if t.is_alive() and not t.daemon)
        status = session.exit_status or status
    if not stuck:
        return
    for thread in stuck:
        if thread.ident is not None and thread.ident in wg.waits():
            wg.unwind(thread.ident, "pytest is exiting")
        else:
            _async_raise(thread, SystemExit)
    deadline = time.monotonic() + STOP_PATIENCE
    for thread in stuck:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in stuck):
        names = ", ".join(repr(t.name) for t in stuck if t.is_alive())
        print(
            f"pytest-concurrency: non-daemon thread(s) {names} left by a test would keep "
            "pytest from exiting: exiting without waiting for them.",
            file=sys.stderr,
        )
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)


__all__ = ["DeadlockError", "is_strict"]
