"""Helpers shared by the exercises' tests: for code that starts processes, and for threads.

Processes.  Import the fixtures into a test module to use them::

    from pytest_concurrency.testing import children, start_method, within  # noqa: F401

- ``start_method``: runs the test once with ``fork`` and once with ``spawn``
  (the default on macOS and Windows) as ``multiprocessing``'s start method.
- ``children`` (autouse where imported): a :class:`Children` watch over the
  child processes the test starts; one still running at the end of the test
  fails it with its Python stack, and whatever is left is killed.
- :func:`within`: call a function, but fail instead of hanging, showing where
  the call and the child processes it started were stuck (then killing those).

Threads (exercises 01-09)::

    from pytest_concurrency.testing import Background, wait_until_blocked

- :class:`Background`: ``fn(*args)`` in a thread of its own; ``outcome()``
  returns its result or raises its exception, and fails instead of hanging.
- :func:`wait_until_blocked`: return once a thread sleeps in
  ``Condition.wait``, so that what the test does next must wake it.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from ._frames import without_plugin_frames
from .deadlock.watchdog import guarded_join, guarded_watch
from .errors import DeadlockError
from .hygiene.processes import ProcessWatch, describe_with_stacks, status_of


@pytest.fixture(params=["fork", "spawn"])
def start_method(request, monkeypatch):
    """Run the test with ``multiprocessing``'s default start method set to fork, then spawn."""
    if request.param not in multiprocessing.get_all_start_methods():
        pytest.skip(f"the {request.param} start method does not exist on this platform")
    main = sys.modules["__main__"]
    if request.param == "spawn" and getattr(main.__spec__, "name", None) is None:
        # Launched as the `pytest` script: every spawned child would run that script
        # (importing pytest) before its work.  The code under test never needs it.
        monkeypatch.delattr(main, "__file__", raising=False)
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    try:
        yield request.param
    finally:
        multiprocessing.set_start_method(previous, force=True)


class Children(ProcessWatch):
    """The child processes started since the watch began (also unreaped, zombie ones).

    The exercise tests' words for :class:`~pytest_concurrency.hygiene.processes.ProcessWatch`.
    """

    def new(self) -> list[psutil.Process]:
        """Every child started since the watch began that is still there (zombies included)."""
        return self.started()

    def running(self) -> list[psutil.Process]:
        """Those of :meth:`new` that have not ended (zombies excluded)."""
        return self.alive()

    def stacks(self) -> str:
        """Each running child and where it is: its Python stacks ("" if none runs)."""
        running = self.running()
        if not running:
            return ""
        return "\n".join([
            f"{len(running)} child process(es) still running, and where each one was:",
            *describe_with_stacks(running),
        ])

    def assert_none_left(self, after: str) -> None:
        __tracebackhide__ = True  # the failure is the test's: pytest shows its frames, not ours
        left = self.new()
        if left:
            described = ", ".join(f"pid {p.pid} ({process_status(p)})" for p in left)
            stacks = self.stacks()
            self.kill()
            raise AssertionError(
                f"{len(left)} child process(es) still there {after}: {described}. "
                "Join every process you start (a finished process that nobody joined "
                "stays behind as a zombie)." + (f"\n{stacks}" if stacks else "")
            )

    def stop(self) -> str | None:
        """Kill every child left; the stacks of those still running, or None if none was."""
        stacks = self.stacks()
        self.kill()
        if not stacks:
            return None
        return f"{stacks}\nThey were killed. Join (or terminate and join) every process you start."


process_status = status_of


# The watch of the test running now, if it uses the ``children`` fixture: within() reports on it.
_current_watch: Children | None = None


@pytest.fixture(autouse=True)
def children():
    global _current_watch
    watch = Children()
    outer, _current_watch = _current_watch, watch
    try:
        yield watch
    finally:
        _current_watch = outer
    # Whatever a failing implementation left behind does not leak into the next test;
    # one still running is a hang the student needs to see.
    report = watch.stop()
    if report:
        pytest.fail(report, pytrace=False)


def within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, but fail instead of hanging if it has not returned after ``seconds``.

    The failure shows where the call was stuck, and the Python stacks of the
    test's child processes still running (with the ``children`` fixture: all
    those the test started; without it, those the call started); those are
    then killed.
    """
    __tracebackhide__ = True
    outcome: dict = {}
    started = _current_watch or Children()

    def call() -> None:
        __tracebackhide__ = True  # the student's frames below it are what the error shows
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as error:  # handed to the test's thread below
            outcome["error"] = error

    caller = threading.Thread(target=call, name=f"calling {fn.__name__}", daemon=True)
    caller.start()
    # Past `seconds` the test fails: when every thread of the test is blocked, it fails now.
    try:
        guarded_join(caller, seconds, f"within({seconds:g} s), then the test fails")
    except DeadlockError:
        started.kill()  # nothing could end the call: its child processes go with it
        raise
    if caller.is_alive():
        report = [f"{fn.__name__} did not return within {seconds:g} s: it hangs."]
        where = _stack_below(caller, call.__code__)
        if where:
            report += ["In the test's process it was waiting here (most recent call last):", where]
        stacks = started.stacks()
        if stacks:
            report += [stacks, "They were killed."]
        started.kill()
        raise AssertionError("\n".join(report))
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _stack_below(thread: threading.Thread, top: Any) -> str:
    """The frames ``thread`` is in, from the one called by the function whose code is ``top``."""
    frame = sys._current_frames().get(thread.ident or -1)
    frames = []
    while frame is not None and frame.f_code is not top:
        frames.append((frame, frame.f_lineno))
        frame = frame.f_back
    text = "".join(traceback.StackSummary.extract(reversed(frames)).format())
    return without_plugin_frames(text).rstrip()


# -- threads: the thread exercises' shared helpers ----------------------------------------

# How long a thread under test may stay blocked before the test calls it stuck.
# Only a guard against hanging: a correct implementation needs milliseconds, and
# no test passes or fails on how fast the machine is.
THREAD_PATIENCE = 10.0

# Captured at import, before any controlled run patches threading.Condition.
_CONDITION_WAIT = threading.Condition.wait.__code__


class Background:
    """``fn(*args)`` in a daemon thread of its own, started at once.

    ``outcome(what)`` joins the thread and returns what ``fn`` returned, or
    raises what it raised; a thread still blocked after ``patience`` seconds
    fails the test (naming ``what`` it was doing) instead of hanging it.

    >>> job = Background(sum, [1, 2], name="adder")
    >>> job.outcome("adding in the background")
    3
    """

    def __init__(
        self, fn: Callable[..., Any], *args: Any, name: str, patience: float = THREAD_PATIENCE
    ) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.patience = patience
        self.thread = threading.Thread(target=self._run, args=(fn, *args), name=name, daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        __tracebackhide__ = True  # the student's frames below it are what the error shows
        try:
            self.value = fn(*args)
        except BaseException as error:  # handed to the test's thread by outcome()
            self.error = error

    @property
    def name(self) -> str:
        return self.thread.name

    def ended(self) -> bool:
        """Wait up to ``patience`` seconds for the thread to end; whether it did."""
        self.thread.join(self.patience)
        return not self.thread.is_alive()

    def where(self) -> str:
        """The stack of the thread from ``fn`` down: where it is now, for a failure message."""
        return _stack_below(self.thread, Background._run.__code__) or "  (the thread has ended)"

    def outcome(self, what: str) -> Any:
        """``fn``'s result (or exception), once the thread ended; ``what`` names the call.

        When every thread of the test is blocked meanwhile, nothing can end the wait
        but the patience, which fails the test: the deadlock watchdog fails it at once.
        """
        __tracebackhide__ = True
        patience = f"Background.outcome: {self.patience:g} s, then the test fails"
        if not guarded_join(self.thread, self.patience, patience):
            raise AssertionError(
                f"{what}: thread {self.name!r} was still blocked {self.patience:g} s later "
                f"(a deadlock, or a wait that nothing ends?). It is stuck here:\n{self.where()}"
            )
        if self.error is not None:
            raise self.error
        return self.value


def wait_until_blocked(
    job: Background | threading.Thread, what: str, *, patience: float = THREAD_PATIENCE
) -> None:
    """Return once the thread sleeps in ``threading.Condition.wait``: a notify now reaches it.

    A thread enters ``Condition.wait`` holding the condition's lock and only lets
    go of it once registered as a waiter, so a ``notify`` sent after this returns
    cannot be missed.  ``Event``, ``Semaphore``, ``Barrier`` and the ``queue``
    classes all wait there too (a bare ``Lock.acquire`` does not: it is C code,
    with no frame to see).  Fails, naming ``what``, if the thread returns instead
    of waiting, or never sleeps there within ``patience`` seconds (it spins).

    >>> bell = threading.Event()
    >>> job = Background(bell.wait, name="listener")
    >>> wait_until_blocked(job, "bell.wait()")
    >>> bell.set()
    >>> job.outcome("bell.wait() after bell.set()")
    True
    """
    __tracebackhide__ = True  # a failure is the test's: pytest shows its frames, not ours
    thread = job.thread if isinstance(job, Background) else job
    waits = {_CONDITION_WAIT, threading.Condition.wait.__code__}
    deadline = time.monotonic() + patience
    # Past the patience the test fails: when every thread of the test is blocked, it fails now.
    with guarded_watch(thread, f"wait_until_blocked: {patience:g} s, then the test fails") as unwound:
        while time.monotonic() < deadline:
            frame = sys._current_frames().get(thread.ident or -1)
            while frame is not None:
                if frame.f_code in waits:
                    return
                frame = frame.f_back
            if not thread.is_alive():
                raise AssertionError(f"{what}: thread {thread.name!r} returned instead of waiting")
            time.sleep(0.001)  # polling only decides how soon we notice, never the verdict
            unwound()
    raise AssertionError(
        f"{what}: thread {thread.name!r} never slept in Condition.wait within {patience:g} s. "
        "A thread that must wait should sleep on a threading.Condition (or an Event), "
        "not spin in a loop"
    )


# -- timeouts on the virtual clock -----------------------------------------------------------


def timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any, float]:
    """``call(...)`` and how long it took: ("returned", value, seconds) or ("raised", error, seconds).

    Inside ``schedule.run`` the seconds are the scheduler's virtual ones.

    >>> timed(int, "3")[:2]
    ('returned', 3)
    >>> timed(int, "three")[0]
    'raised'
    """
    start = time.monotonic()
    try:
        value = call(*args, **kwargs)
    except Exception as error:
        return "raised", error, time.monotonic() - start
    return "returned", value, time.monotonic() - start


def timeout_hint(took: float, timeout: float) -> str:
    """What to fix when a wait of ``timeout`` seconds gave up after ``took`` seconds instead.

    >>> timeout_hint(0.003, 3.0).startswith("wait for the whole timeout")
    True
    """
    if took < timeout:
        return (
            "wait for the whole timeout before giving up (in seconds, not milliseconds); "
            "Condition.wait_for(predicate, timeout) does the counting for you"
        )
    return (
        "the timeout is the whole wait, not the wait after each wakeup; "
        "Condition.wait_for(predicate, timeout) counts down what is left"
    )


def attribute_name(obj: Any, public: str) -> str:
    """How the student's code spells the attribute behind ``obj.<public>``: for messages.

    ``self._active`` when the object keeps the count in ``_active`` (``active``
    being a property over it), ``self.active`` when the attribute is plain.

    >>> class Gate:
    ...     def __init__(self):
    ...         self._active = 0
    ...     active = property(lambda self: self._active)
    >>> attribute_name(Gate(), "active")
    'self._active'
    """
    names = getattr(obj, "__dict__", {})
    if public in names:
        return f"self.{public}"
    if f"_{public}" in names:
        return f"self._{public}"
    if f"_{type(obj).__name__}__{public}" in names:  # written self.__active: name-mangled
        return f"self.__{public}"
    return f"self.{public}"


# --- lock discipline across processes -------------------------------------------------------

_UNLOCKED, _SPLIT, _EXAMPLE_INDEX = 0, 1, 2


class _GuardedLock:
    """The shared lock of a :class:`GuardedArray`, counting each outermost acquisition.

    Every process that acquires it bumps a counter kept in shared memory while it
    holds the lock, so a read and a write made under the *same* acquisition carry
    the same number, and a write made after the lock was let go in between does not.
    """

    def __init__(self, lock: Any, stats: Any) -> None:
        self._lock = lock
        self._stats = stats
        self._depth = 0
        self.generation: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_lock": self._lock, "_stats": self._stats}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["_lock"], state["_stats"])  # type: ignore[misc]

    def held(self) -> bool:
        """Whether this process (this thread) holds the shared lock now."""
        return bool(self._lock._semlock._is_mine())

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        got = bool(self._lock.acquire(block, timeout))
        if got:
            self._depth += 1
            if self._depth == 1:
                self._stats[3] += 1  # safe: we hold the lock every process shares
                self.generation = int(self._stats[3])
        return got

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.generation = None
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class GuardedArray:
    """A view of a ``multiprocessing.Array`` that records how child processes update it.

    Pass it where the exercise expects the array (it pickles to spawned and forked
    children alike).  Every write is checked: was it made while this process held the
    array's own lock (``get_lock()``, the lock every process shares), and, if the cell
    was read first, under the same acquisition as that read?  A missing lock, a lock
    of the process's own, or a lock let go between the read and the write is
    recorded on every run, whatever the timing: no lost update has to happen.

    >>> arr = GuardedArray(multiprocessing.Array("i", 2))
    >>> with arr.get_lock():
    ...     arr[0] += 1
    >>> arr[1] += 1
    >>> arr.unlocked_writes, arr.split_updates, arr[:]
    (1, 0, [1, 1])
    """

    def __init__(self, arr: Any) -> None:
        self._arr = arr
        # [writes without the shared lock, read-modify-writes split across two
        #  acquisitions, an index written without the lock + 1, acquisitions so far]
        self._stats = multiprocessing.RawArray("q", 4)
        self._guard = _GuardedLock(arr.get_lock(), self._stats)
        self._reads: dict[int, int | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"_arr": self._arr, "_stats": self._stats, "_guard": self._guard}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reads = {}

    @property
    def unlocked_writes(self) -> int:
        """How many writes (at least) were made without holding the shared lock."""
        return int(self._stats[_UNLOCKED])

    @property
    def split_updates(self) -> int:
        """How many writes (at least) followed a read of the same cell made under another acquisition."""
        return int(self._stats[_SPLIT])

    @property
    def example_index(self) -> int | None:
        """An index written without the lock, or ``None``."""
        return int(self._stats[_EXAMPLE_INDEX]) - 1 if self._stats[_EXAMPLE_INDEX] else None

    def _indexes(self, key: Any) -> range | list[int]:
        if isinstance(key, slice):
            return range(len(self._arr))[key]
        return [range(len(self._arr))[key]]

    def __len__(self) -> int:
        return len(self._arr)

    def __getitem__(self, key: Any) -> Any:
        generation = self._guard.generation if self._guard.held() else None
        for i in self._indexes(key):
            self._reads[i] = generation
        return self._arr[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        held = self._guard.held()
        for i in self._indexes(key):
            if not held:
                self._stats[_UNLOCKED] += 1
                self._stats[_EXAMPLE_INDEX] = i + 1
            elif i in self._reads and self._reads[i] != self._guard.generation:
                self._stats[_SPLIT] += 1
            self._reads.pop(i, None)
        self._arr[key] = value

    def get_lock(self) -> _GuardedLock:
        return self._guard

    def get_obj(self) -> GuardedArray:
        return self

    def problems(self) -> str:
        """What went wrong, in a student's words ("" if every update held the shared lock)."""
        found = []
        if self.unlocked_writes:
            found.append(
                f"{self.unlocked_writes} write(s) to the shared array (e.g. arr[{self.example_index}]) "
                "were made without holding arr.get_lock(), the lock every process shares "
                "(a lock a process makes for itself, or a Lock() made in each child, excludes nobody)"
            )
        if self.split_updates:
            found.append(
                f"{self.split_updates} write(s) followed a read of the same cell made under an "
                "earlier acquisition of the lock: another process may have written in between. "
                "Hold arr.get_lock() around both the read and the write"
            )
        return "; ".join(found)
