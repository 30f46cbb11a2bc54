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

What importing a student's module started (threads, processes, greenlets,
recorded by :mod:`.at_import`) fails the exercise's first test, at its setup,
and is stopped.  At the end of the session, what student code left running
is listed in the terminal summary and stopped; non-daemon threads and
``atexit`` handlers that student code registered get a short time at exit,
then the process exits anyway, with pytest's status, once every report is
written.

Example::

    @pytest.mark.hygiene
    def test_my_pool_cleans_up():
        pool = MyPool(4)
        pool.close()            # a worker left alive here fails the test
"""

from __future__ import annotations

import atexit
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
from .._frames import (
    call_site,
    format_stack,
    is_user_file,
    renumber,
    thread_label,
    user_site,
    without_plugin_frames,
)
from ..deadlock import _waitgraph as wg
from ..errors import DeadlockError
from ..layout import exercise_name
from . import at_import
from .scope import HYGIENE_SCOPE, forget_threads_at_start, is_strict, threads_at_start

if TYPE_CHECKING:
    from .processes import ProcessGuard

# Threads that end on their own (a timer just fired, a pool winding down) get this long.
THREAD_GRACE = 1.0
STOP_PATIENCE = 1.0
# An atexit handler of student code gets this long at exit before pytest exits without it.
ATEXIT_PATIENCE = 2.0


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
        # Threads of strict tests that could not be stopped (blocked outside Python).
        self.unstoppable: list[threading.Thread] = []
        # (function, args, kwargs, where) of each atexit handler student code registered.
        self.atexit_handlers: list[tuple[Any, tuple[Any, ...], dict[str, Any], str]] = []
        self._real_register: Any = None
        # What student code left running at the end of the session: lines of the terminal summary.
        self.end_report: list[str] = []

    # ---- atexit handlers of student code

    def watch_atexit(self) -> None:
        real = self._real_register = atexit.register

        def register(func: Any, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1)
            filename = caller.f_code.co_filename
            if is_user_file(filename) and not os.path.basename(filename).startswith(("test_", "conftest")):
                name = getattr(func, "__qualname__", repr(func))
                self.atexit_handlers.append((func, args, kwargs, f"{name} ({call_site(filename, caller.f_lineno)})"))
            return real(func, *args, **kwargs)

        register.watched_by_plugin = True  # type: ignore[attr-defined]
        self._watching = register
        atexit.register = register  # type: ignore[assignment]

    def unwatch_atexit(self) -> None:
        if self._real_register is not None and atexit.register is getattr(self, "_watching", None):
            atexit.register = self._real_register

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
        if args.exc_type is SystemExit and args.thread is not None and args.thread.ident in _stopped_by_us:
            return  # we stopped it, and said so
        current = self.current
        if current is not None and current.strict:
            name = args.thread.name if args.thread is not None else "<unknown>"
            text = without_plugin_frames("".join(
                traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
            ))
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
    session.watch_atexit()
    _register_exit_guard(session)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put atexit.register back: what student code registers is only watched during the session."""
    session = config.stash.get(_session_key, None)
    if session is not None:
        session.unwatch_atexit()


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail the exercise's first test when importing its module started threads, processes or greenlets."""
    if not at_import.pending():
        return
    records = at_import.take(exercise_name(item.path))
    started = [s for record in records for s in record.started]
    # A thread that ends on its own (a warm-up, say) gets the grace a test's threads get.
    deadline = time.monotonic() + THREAD_GRACE
    for s in started:
        if s.kind == "thread":
            s.obj.join(max(0.0, deadline - time.monotonic()))
    running = [s for s in started if s.running()]
    if not running:
        return
    for record in records:
        record.started = [s for s in record.started if s in running]
    lines = at_import.report([r for r in records if r.started])
    at_import.stop(running, _stop_gently)
    if all(record.broken for record in records):
        return  # every test of the exercise fails as broken already: one line says why
    pytest.fail("\n".join([*lines, at_import.after_stopping(running)]), pytrace=False)


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
        item.config.stash[_session_key].unstoppable.extend(t for t in threads if t.is_alive())
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


def _interrupt(thread: threading.Thread, message: str) -> None:
    """Stop a thread: unwind it if it waits on a watched primitive, else raise SystemExit in it."""
    if thread.ident is not None and thread.ident in wg.waits():
        wg.unwind(thread.ident, message)
    else:
        _stopped_by_us.add(thread.ident or 0)
        _async_raise(thread, SystemExit)


# Threads we raised SystemExit in: their SystemExit is ours, not an error of the test running.
_stopped_by_us: set[int] = set()


def _stop_gently(thread: threading.Thread) -> None:
    """Stop a thread while the run goes on: never leave an exception pending in one blocked in C.

    An exception raised into a thread waits until it runs Python code again; while it
    waits, Python 3.11 takes its slow path in every other thread too (the scheduler's
    runs slow to a crawl).  A thread blocked in ``Condition.wait`` (an Event, a queue)
    is woken after it; one blocked elsewhere in C is left for the end of the session.
    """
    if thread.ident is not None and thread.ident in wg.waits():
        wg.unwind(thread.ident, "started at import, stopped by pytest-concurrency")
        return
    waiter = None
    if _in_native_call(thread):
        frame = sys._current_frames().get(thread.ident or 0)
        # By name: while a test runs, the deadlock part has its own Condition in threading.
        if frame is None or (frame.f_code.co_name, frame.f_code.co_filename) != ("wait", threading.__file__):
            return
        waiter = frame.f_locals.get("waiter")
        if waiter is None:
            return
    _stopped_by_us.add(thread.ident or 0)
    _async_raise(thread, SystemExit)
    if waiter is not None:
        with contextlib.suppress(RuntimeError):  # it woke up by itself meanwhile
            waiter.release()


def _in_native_call(thread: threading.Thread, samples: int = 3) -> bool:
    """Whether the thread sits in a call to C code (a sleep, a lock, a socket) each time we look."""
    import dis

    for i in range(samples):
        if i:
            time.sleep(0.01)
        frame = sys._current_frames().get(thread.ident or 0)
        if frame is None:
            return False
        try:
            name = dis.opname[frame.f_code.co_code[frame.f_lasti]]
        except IndexError:
            return False
        if not (name.startswith("CALL") or name == "PRECALL"):
            return False
    return True


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
        _interrupt(thread, message)
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
    """Stop what student code left running and say what it was; kill the child processes still alive."""
    hygiene = session.config.stash.get(_session_key, None)
    if hygiene is None:
        return
    hygiene.exit_status = int(exitstatus)
    hygiene.end_report = _leftovers(hygiene)
    watch = hygiene.session_processes
    watch.kill(watch.alive())


def _leftovers(hygiene: SessionHygiene) -> list[str]:
    """What student code left running, described, then stopped (threads: asked to end)."""
    lines = []
    left = at_import.leftovers()
    for record, started in left:
        lines.append(f"  {started.describe()}, started by importing {record.module_file.name}")
    at_import.stop([started for _, started in left], _stop_gently)
    seen = {started.obj for _, started in left}
    for thread in _threads_left(hygiene):
        if thread not in seen:
            kind = "daemon" if thread.daemon else "non-daemon"
            lines.append(f"  {thread_label(thread.name)} ({kind}), left by a test")
    for _, _, _, name in hygiene.atexit_handlers:
        lines.append(f"  atexit handler {name}: given {ATEXIT_PATIENCE:g} s at exit")
    return lines


def _threads_left(hygiene: SessionHygiene) -> list[threading.Thread]:
    """Threads left by tests that still run: non-daemon ones of any test, any that could not be stopped."""
    found = [t for t in hygiene.left_behind if t.is_alive() and not t.daemon]
    found += [t for t in hygiene.unstoppable if t.is_alive() and t not in found]
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List what student code left running at the end: it is stopped, and never keeps pytest alive."""
    hygiene = terminalreporter.config.stash.get(_session_key, None)
    if hygiene is None or not hygiene.end_report:
        return
    terminalreporter.write_sep("=", "pytest-concurrency: left running at the end")
    for line in hygiene.end_report:
        terminalreporter.write_line(line, yellow=True)
    terminalreporter.write_line(
        "pytest-concurrency stops them, and exits without waiting for them. Stop (join) every thread "
        "and process you start, and keep module-level code under `if __name__ == \"__main__\":`."
    )


_exit_guards: list[SessionHygiene] = []


def _register_exit_guard(session: SessionHygiene) -> None:
    _exit_guards.append(session)
    if len(_exit_guards) == 1:
        with contextlib.suppress(AttributeError, RuntimeError):  # private API, or exiting already
            threading._register_atexit(_exit_without_waiting)  # type: ignore[attr-defined]


def _exit_without_waiting() -> None:
    """Runs before the interpreter waits for non-daemon threads: never wait for a leaked one,
    nor for an atexit handler of student code that blocks."""
    stuck: list[threading.Thread] = []
    handlers: list[tuple[Any, tuple[Any, ...], dict[str, Any], str]] = []
    status = 0
    for session in _exit_guards:
        stuck.extend(t for t in _threads_left(session) if not t.daemon and t not in stuck)
        handlers.extend(session.atexit_handlers)
        status = session.exit_status or status
    stuck.extend(s.obj for _, s in at_import.leftovers() if s.kind == "thread" and not s.obj.daemon)
    if not stuck and not handlers:
        return
    for thread in stuck:
        _interrupt(thread, "pytest is exiting")
    deadline = time.monotonic() + STOP_PATIENCE
    for thread in stuck:
        thread.join(max(0.0, deadline - time.monotonic()))
    problems = []
    if any(t.is_alive() for t in stuck):
        names = ", ".join(repr(t.name) for t in stuck if t.is_alive())
        problems.append(f"non-daemon thread(s) {names} left by a test or an import would keep pytest from exiting")
    blocked = _run_atexit_handlers(handlers)
    if blocked:
        problems.append(f"atexit handler(s) {', '.join(blocked)} did not return in {ATEXIT_PATIENCE:g} s")
    if problems:
        print(f"pytest-concurrency: {'; '.join(problems)}: exiting without waiting for them.", file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)


def _run_atexit_handlers(handlers: list[tuple[Any, tuple[Any, ...], dict[str, Any], str]]) -> list[str]:
    """Run student code's atexit handlers now (last registered first), each with a time limit.

    They are taken out of ``atexit``, which would wait for them without end.  The names of
    those that did not return in time.
    """
    blocked = []
    for func, args, kwargs, name in reversed(handlers):
        with contextlib.suppress(Exception):
            atexit.unregister(func)

        def run(func: Any = func, args: tuple[Any, ...] = args, kwargs: dict[str, Any] = kwargs) -> None:
            try:
                func(*args, **kwargs)
            except BaseException:  # noqa: BLE001 - as atexit does: say so and go on
                traceback.print_exc()

        runner = threading.Thread(target=run, name=f"atexit {name}", daemon=True)
        runner.start()
        runner.join(ATEXIT_PATIENCE)
        if runner.is_alive():
            blocked.append(name)
    return blocked


__all__ = ["DeadlockError", "is_strict"]
