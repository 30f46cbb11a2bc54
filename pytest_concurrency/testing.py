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
- :class:`GuardedArray` (a shared ``Array``) and :class:`GuardedManagers` (the
  dicts of ``multiprocessing.Manager()``): record whether every update a child
  process makes holds the one lock all processes share; checked on every run,
  not left to the luck of a lost update.

Threads (exercises 01-09)::

    from pytest_concurrency.testing import Background, wait_until_blocked

- :class:`Background`: ``fn(*args)`` in a thread of its own; ``outcome()``
  returns its result or raises its exception, and fails instead of hanging.
- :func:`wait_until_blocked`: return once a thread sleeps in
  ``Condition.wait``, so that what the test does next must wake it.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import multiprocessing.synchronize
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
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


# --- lock discipline across processes, for a Manager's dict ---------------------------------
#
# GuardedArray wraps the one object a test hands over; a Manager is made by the code under
# test, so GuardedManagers swaps what ``multiprocessing.Manager()`` and ``Lock()`` make
# instead.  Each worker process appends what it saw to a file (one JSON line per finding,
# each written once per process): a file outlives the manager's shutdown, and its path
# reaches forked and spawned children alike through the environment.

# "<pid of the test's process>:<path of the findings file>", while a GuardedManagers is active.
_FINDINGS_ENV = "PYTEST_CONCURRENCY_LOCK_FINDINGS"
# Enough for every key of an exercise's test; past it, a process records nothing more.
_MAX_FINDINGS = 1000


class _ThisThread(threading.local):
    """The shared locks this thread holds now, and under which holds it read which keys."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[int, int]] = {}  # lock id -> (depth, number of this hold)
        self.reads: dict[tuple[str, Any], frozenset[tuple[str, int]]] = {}


_this_thread = _ThisThread()
_hold_numbers = itertools.count(1)
_recorded: set[str] = set()


def _forget_the_parent() -> None:
    # A forked child does not hold the locks its parent held, nor share its reads.
    global _this_thread, _recorded
    _this_thread = _ThisThread()
    _recorded = set()


os.register_at_fork(after_in_child=_forget_the_parent)


def _acquired(lock_id: str) -> None:
    depth, number = _this_thread.held.get(lock_id, (0, next(_hold_numbers)))
    _this_thread.held[lock_id] = (depth + 1, number)


def _released(lock_id: str) -> None:
    depth, number = _this_thread.held.pop(lock_id, (1, 0))
    if depth > 1:  # an RLock still held by an outer `with`
        _this_thread.held[lock_id] = (depth - 1, number)


def _holds() -> frozenset[tuple[str, int]]:
    """The locks this thread holds now, each with the number of its hold."""
    return frozenset((lock_id, number) for lock_id, (_, number) in _this_thread.held.items())


def _guard_in_force() -> tuple[int, str] | None:
    """(the test's pid, the findings file) while a GuardedManagers is active, else None."""
    value = os.environ.get(_FINDINGS_ENV)
    if not value:
        return None
    pid, _, path = value.partition(":")
    return int(pid), path


def _in_a_worker() -> bool:
    guard = _guard_in_force()
    return guard is not None and guard[0] != os.getpid()


def _record(**finding: Any) -> None:
    guard = _guard_in_force()
    # The test's own process is left alone: before the workers start or after they are
    # joined, it may write without a lock.
    if guard is None or guard[0] == os.getpid():
        return
    line = json.dumps({"pid": os.getpid(), **finding}, sort_keys=True)
    if line in _recorded or len(_recorded) >= _MAX_FINDINGS:
        return
    _recorded.add(line)
    try:  # without O_CREAT: a worker nobody joined must not recreate the file of an ended guard
        fd = os.open(guard[1], os.O_WRONLY | os.O_APPEND)
    except OSError:
        return
    try:
        os.write(fd, (line + "\n").encode())  # one write: lines of several processes do not mix
    finally:
        os.close(fd)


class _TrackedSemLock(multiprocessing.synchronize.SemLock):
    """A ``multiprocessing`` lock that tells this process's record when it is held.

    Its id is made once, where the lock is made, and travels with it: copied into forked
    children, pickled to spawned ones.  So a lock made in the parent and passed to every
    worker has one id in all of them, and a lock each worker makes has one of its own.
    """

    _guard_id: str
    _semlock: Any
    _kind: str  # Lock or RLock, as the student wrote it

    def __init__(self, *, ctx: Any) -> None:
        super().__init__(ctx=ctx)  # type: ignore[call-arg]  # Lock's or RLock's, by the MRO
        self._guard_id = f"multiprocessing.{self._kind}() made in process {os.getpid()} ({uuid.uuid4().hex[:8]})"

    def _make_methods(self) -> None:
        # SemLock binds acquire/release of the C lock on the instance, which would hide ours.
        pass

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        got = bool(self._semlock.acquire(block, timeout))
        if got:
            _acquired(self._guard_id)
        return got

    def release(self) -> None:
        self._semlock.release()
        _released(self._guard_id)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __getstate__(self) -> Any:
        return super().__getstate__(), self._guard_id

    def __setstate__(self, state: Any) -> None:
        inner, self._guard_id = state
        super().__setstate__(inner)  # type: ignore[misc]


class _TrackedLock(_TrackedSemLock, multiprocessing.synchronize.Lock):
    _kind = "Lock"


class _TrackedRLock(_TrackedSemLock, multiprocessing.synchronize.RLock):
    _kind = "RLock"


# What GuardedManagers swaps out and in, by module and name.  SyncManager joins both once
# the Manager classes are made, on first use (see __getattr__ below).
_REAL_MP: dict[tuple[str, str], Any] = {
    ("multiprocessing.synchronize", "Lock"): multiprocessing.synchronize.Lock,
    ("multiprocessing.synchronize", "RLock"): multiprocessing.synchronize.RLock,
}
_TRACKED_MP: dict[tuple[str, str], Any] = {
    ("multiprocessing.synchronize", "Lock"): _TrackedLock,
    ("multiprocessing.synchronize", "RLock"): _TrackedRLock,
}
_MANAGER_CLASSES = ("GuardedSyncManager", "_GuardedDictProxy", "_TrackedLockProxy")


def _proxy_id(proxy: Any, what: str) -> str:
    # The object in the manager's server: the same for every proxy of it, in every process.
    return f"{what} {proxy._token.id} of the manager at {proxy._token.address}"


def _make_manager_classes() -> dict[str, type]:
    """The Manager whose ``dict()``, ``Lock()`` and ``RLock()`` proxies record what workers do."""
    import multiprocessing.managers as managers

    class _TrackedLockProxy(managers.AcquirerProxy):  # type: ignore[name-defined]
        """A manager ``Lock()``/``RLock()`` proxy that tells this process's record when it is held."""

        def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
            got = bool(super().acquire(blocking, timeout))
            if got:
                _acquired(_proxy_id(self, "lock"))
            return got

        def release(self) -> None:
            super().release()
            _released(_proxy_id(self, "lock"))

        def __enter__(self) -> bool:
            return self.acquire()

        def __exit__(self, *exc: object) -> None:
            self.release()

    class _GuardedDictProxy(managers.DictProxy):
        """A manager ``dict()`` proxy that, in worker processes, checks the lock around each write.

        Reads (``get``, ``d[k]``, ``k in d``, ``setdefault``, ``pop``) note which holds of
        which locks were current; a write (``d[k] = v``, ``update``, ``del d[k]``, ``pop``)
        is recorded as ``unlocked`` (no shared lock held), ``split`` (the key's read came
        under another hold) or ``locked`` (with the locks held, compared across processes
        by :meth:`GuardedManagers.problems`).
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._guard_id = _proxy_id(self, "dict")
            if _in_a_worker():
                # Arrived in a spawned worker, which imported multiprocessing afresh: the
                # locks and managers it makes are tracked too (a forked one inherited that).
                _install(_tracked_mp())

        def _read(self, key: Any) -> None:
            _this_thread.reads[(self._guard_id, key)] = _holds()

        def _write(self, key: Any) -> None:
            holds = _holds()
            read = _this_thread.reads.pop((self._guard_id, key), None)
            shown = repr(key)[:60]
            if not holds:
                _record(kind="unlocked", dict=self._guard_id, key=shown)
            elif read is not None and not read & holds:
                _record(kind="split", dict=self._guard_id, key=shown)
            else:
                _record(kind="locked", dict=self._guard_id, key=shown,
                        locks=sorted(lock_id for lock_id, _ in holds))

        def __getitem__(self, key: Any) -> Any:
            self._read(key)
            return super().__getitem__(key)

        def get(self, key: Any, *default: Any) -> Any:
            self._read(key)
            return super().get(key, *default)

        def __contains__(self, key: Any) -> bool:
            self._read(key)  # `if k not in d: d[k] = 0` acts on what it read
            return super().__contains__(key)

        def setdefault(self, key: Any, *default: Any) -> Any:
            # One request, so atomic in the manager: no lock needed; what it returns is a read.
            self._read(key)
            return super().setdefault(key, *default)

        def __setitem__(self, key: Any, value: Any) -> None:
            self._write(key)
            super().__setitem__(key, value)

        def __delitem__(self, key: Any) -> None:
            self._write(key)
            super().__delitem__(key)

        def pop(self, key: Any, *default: Any) -> Any:
            self._write(key)
            self._read(key)  # `n = d.pop(k, 0); d[k] = n + 1` is a read-modify-write too
            return super().pop(key, *default)

        def update(self, *args: Any, **kwargs: Any) -> None:
            items = dict(*args, **kwargs)
            for key in items:
                self._write(key)
            super().update(items)

    class GuardedSyncManager(managers.SyncManager):
        """What ``multiprocessing.Manager()`` makes while a :class:`GuardedManagers` is active."""

    # The server makes what SyncManager's would (threading.Lock as it was when SyncManager
    # registered it); only the proxies differ.
    registry: dict[str, tuple[Any, ...]] = managers.SyncManager._registry  # type: ignore[attr-defined]
    for typeid, proxy in (("dict", _GuardedDictProxy), ("Lock", _TrackedLockProxy),
                          ("RLock", _TrackedLockProxy)):
        GuardedSyncManager.register(typeid, registry[typeid][0], proxy)
    made: dict[str, type] = {}
    for cls in (GuardedSyncManager, _GuardedDictProxy, _TrackedLockProxy):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__  # pickled by name, from here
        made[cls.__name__] = cls
    return made


def __getattr__(name: str) -> Any:
    """The Manager classes, made on first use: what pickle finds under their names here.

    Not at import: importing ``multiprocessing.managers`` fixes in ``SyncManager``'s registry
    the ``threading.Lock`` of that moment, which a spawned Manager then pickles by name.  At
    this module's import (test collection) that is the plain one, while during a test the
    deadlock watch has put its own under that name: every spawned Manager would fail.
    """
    if name in _MANAGER_CLASSES:
        return _manager_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _manager_classes() -> dict[str, type]:
    if "GuardedSyncManager" not in globals():
        globals().update(_make_manager_classes())
        import multiprocessing.managers  # imported by _make_manager_classes, now safe to name

        _REAL_MP[("multiprocessing.managers", "SyncManager")] = multiprocessing.managers.SyncManager
        _TRACKED_MP[("multiprocessing.managers", "SyncManager")] = globals()["GuardedSyncManager"]
    return {name: globals()[name] for name in _MANAGER_CLASSES}


def _tracked_mp() -> dict[tuple[str, str], Any]:
    _manager_classes()
    return _TRACKED_MP


def _install(classes: dict[tuple[str, str], Any]) -> None:
    # BaseContext.Manager/Lock/RLock import these names from their modules at each call.
    for (module, name), cls in classes.items():
        setattr(sys.modules[module], name, cls)


class GuardedManagers:
    """While active, records how worker processes update the dicts of ``multiprocessing.Manager()``.

    Every ``Manager()`` (or ``ctx.Manager()``) made meanwhile is a ``GuardedSyncManager``,
    whose ``dict()`` proxies check, in each process but the test's own, that every write of a
    key is made while holding a lock all processes share, and, when the key was read first,
    under the same hold of the lock as that read.  The locks it knows are the manager's
    ``Lock()``/``RLock()`` and ``multiprocessing.Lock()``/``RLock()`` made meanwhile; either
    kind is right when every process holds the same one.  A missing lock, a lock let go
    between the read and the write, or a lock each process makes for itself is recorded on
    every run, whatever the timing: no update has to be lost.  Works under fork and spawn::

        with GuardedManagers() as guard:
            counts = word_count(chunks, 4)
        assert not guard.problems(), guard.problems()
    """

    def __init__(self) -> None:
        self._path: str | None = None
        self._previous: str | None = None
        self._lines: list[str] = []

    def __enter__(self) -> GuardedManagers:
        tracked = _tracked_mp()
        if any(getattr(sys.modules[module], name) is cls for (module, name), cls in tracked.items()):
            raise RuntimeError("GuardedManagers is already active (they do not nest)")
        fd, self._path = tempfile.mkstemp(prefix="pytest-concurrency-locks-", suffix=".jsonl")
        os.close(fd)
        self._previous = os.environ.get(_FINDINGS_ENV)
        os.environ[_FINDINGS_ENV] = f"{os.getpid()}:{self._path}"
        _install(tracked)
        return self

    def __exit__(self, *exc: object) -> None:
        _install(_REAL_MP)
        if self._previous is None:
            os.environ.pop(_FINDINGS_ENV, None)
        else:
            os.environ[_FINDINGS_ENV] = self._previous
        self._lines = self._read()
        if self._path is not None:
            os.unlink(self._path)
            self._path = None

    def _read(self) -> list[str]:
        if self._path is None:
            return self._lines
        with open(self._path, encoding="utf-8") as file:
            return file.read().splitlines()

    def findings(self) -> list[dict[str, Any]]:
        """What the workers recorded: one dict per kind of write, key, locks and process."""
        return [json.loads(line) for line in self._read() if line.endswith("}")]

    def problems(self) -> str:
        """What went wrong, in a student's words ("" if every update held the shared lock)."""
        findings = self.findings()
        found = []
        unlocked = _keys_and_processes(f for f in findings if f["kind"] == "unlocked")
        if unlocked:
            found.append(
                f"{unlocked} without holding a lock that every process shares. "
                "`d[w] = d.get(w, 0) + n` is two requests to the manager: another process can "
                "write in between, and its update is lost. Make one lock (manager.Lock()) before "
                "starting the processes, give it to each of them, and hold it around the read "
                "and the write"
            )
        split = _keys_and_processes(f for f in findings if f["kind"] == "split")
        if split:
            found.append(
                f"{split} under another hold of the lock than the read its value came from: "
                "the lock was let go in between, so another process could write meanwhile. "
                "Hold the lock around both the read and the write"
            )
        apart = _locks_apart(f for f in findings if f["kind"] == "locked")
        if apart:
            found.append(apart)
        return "; ".join(found)


def _keys_and_processes(findings: Iterable[dict[str, Any]]) -> str:
    """ "key 'a' (and 2 more) of the Manager dict was written by 3 worker processes" ("" if none)."""
    keys: dict[str, None] = {}
    pids = set()
    for finding in findings:
        keys[finding["key"]] = None
        pids.add(finding["pid"])
    if not keys:
        return ""
    first, *more = keys
    also = f" (and {len(more)} more)" if more else ""
    return (f"key {first}{also} of the Manager dict was written by {len(pids)} worker "
            f"process{'es' if len(pids) > 1 else ''}")


def _locks_apart(findings: Iterable[dict[str, Any]]) -> str:
    """Keys whose writes held no lock in common: a lock per process (or per update)."""
    by_key: dict[tuple[str, str], dict[int, list[frozenset[str]]]] = {}
    for finding in findings:
        per_pid = by_key.setdefault((finding["dict"], finding["key"]), {})
        per_pid.setdefault(finding["pid"], []).append(frozenset(finding["locks"]))
    apart = {
        key: per_pid for key, per_pid in by_key.items()
        if not frozenset.intersection(*(locks for held in per_pid.values() for locks in held))
    }
    if not apart:
        return ""
    (_, first), per_pid = next(iter(apart.items()))
    also = f" (and {len(apart) - 1} more)" if len(apart) > 1 else ""
    locks = len({locks for held in per_pid.values() for locks in held})
    if any(len(set(held)) > 1 for held in per_pid.values()):
        why = "a new lock was made for each update"
    else:
        why = f"each of the {len(per_pid)} processes made its own lock"
    return (
        f"key {first}{also} of the Manager dict was updated under {locks} different locks: "
        f"{why}, and a lock that no other process holds excludes nobody. Make the lock once, "
        "before starting the processes (manager.Lock(), or multiprocessing.Lock()), and pass "
        "that one lock to each of them"
    )
