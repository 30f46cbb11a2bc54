"""The wait-for graph of real threads: instrumented locks, conditions and joins.

While a test runs, :func:`install` replaces ``threading.Lock``, ``threading.RLock``,
``threading.Condition`` and ``threading.Thread.join`` by versions that say who
owns what, who waits for what and where.  ``Semaphore``, ``BoundedSemaphore``,
``Event``, ``Barrier``, ``queue.Queue`` and ``concurrent.futures.Future`` build
on those names, so they are covered too.  :func:`uninstall` puts back exactly
what :func:`install` found (the controlled scheduler patches the same names the
same way, inside ``schedule.run``).

A blocked wait never blocks in one piece: it waits in slices of ``SLICE``
seconds on the real lock underneath, and between two slices it looks whether
the detector asked it to unwind.  That is how a deadlocked thread is given a
:class:`~pytest_concurrency.errors.DeadlockError` instead of staying stuck::

    >>> install()
    >>> lock = threading.Lock()
    >>> lock.acquire()
    True
    >>> held_by_thread()[threading.get_ident()][0].lock is lock
    True
    >>> lock.release(); uninstall()

Locks that outlive the test keep working (their waits are just no longer
watched).  Everything here is also ordering information for lockdep-style
checks: :func:`order_inversions` lists the pairs of locks taken in both orders.
"""

from __future__ import annotations

import _thread
import contextlib
import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from .errors import DeadlockError

_get_ident = _thread.get_ident
_allocate_lock = _thread.allocate_lock
_monotonic = time.monotonic
_getframe = sys._getframe

# How long a blocked wait sleeps before it looks whether it must unwind.
SLICE = 0.05

_serials = itertools.count(1)
_OUR_FILE = __file__
# Frames of these files are plumbing: a site is the first frame outside them.
_PLUMBING = {_OUR_FILE, threading.__file__}
for _name in ("queue", "concurrent.futures._base", "concurrent.futures.thread"):
    _module = sys.modules.get(_name) or __import__(_name, fromlist=["_"])
    _PLUMBING.add(_module.__file__)


Site = tuple[CodeType, int]


def _caller_site(frame: FrameType | None) -> Site | None:
    while frame is not None and frame.f_code.co_filename in _PLUMBING:
        frame = frame.f_back
    return None if frame is None else (frame.f_code, frame.f_lineno)


def format_site(site: Site | None) -> str:
    """``file.py:12 in func: source line`` for a recorded site."""
    if site is None:
        return "?"
    code, line = site
    import linecache

    source = linecache.getline(code.co_filename, line).strip()
    where = f"{code.co_filename}:{line} in {code.co_name}"
    return f"{where}: {source}" if source else where


@dataclass
class Held:
    lock: InstrumentedLock | InstrumentedRLock
    site: Site | None


class Wait:
    """One blocked call, from its start to its end."""

    __slots__ = ("kind", "target", "timed", "since", "serial")

    def __init__(self, kind: str, target: Any, timed: bool, since: float) -> None:
        self.kind = kind  # "acquire", "wait" (condition), "join"
        self.target = target  # the lock, the condition, the thread
        self.timed = timed
        self.since = since
        self.serial = next(_serials)

    def __repr__(self) -> str:
        return f"Wait({self.kind!r}, {self.target!r}, timed={self.timed}, since={self.since:.3f})"


@dataclass
class OrderEdge:
    """Lock ``first`` was held while ``second`` was taken, by ``thread`` at these sites."""

    first: Any
    second: Any
    thread: str
    first_site: Site | None
    second_site: Site | None


# The locks a thread holds form a stack linked through the locks themselves:
# ident -> the lock it took last (or None), and each held lock's ``_below`` is
# the one its owner took before it.  One dict store per acquire and release.
_top: dict[int, Any] = {}
# ident -> the blocked call it is in (recorded only once a wait outlasts its first slice).
_waits: dict[int, Wait] = {}
# ident -> the report: set by the detector, read by the thread between slices.
_unwound: dict[int, str] = {}
# (serial of first, serial of second) -> first time seen; and inversions found.
_order: dict[tuple[int, int], OrderEdge] = {}
_order_lock = _allocate_lock()
_inversions: list[tuple[OrderEdge, list[OrderEdge]]] = []
# Called with the new Wait whenever a wait is recorded (the watchdog's alarm clock).
on_wait: Callable[[Wait], None] | None = None


def _line_at(code: CodeType, lasti: int) -> int | None:
    """The source line of byte offset ``lasti`` in ``code`` (what f_lineno would have said)."""
    line = None
    for start, end, number in code.co_lines():
        if start <= lasti < end:
            return number
        if start <= lasti:
            line = number if number is not None else line
    return line


def _site_of(frame: FrameType | None, lasti: int) -> Site | None:
    if frame is None:
        return None
    if frame.f_code.co_filename in _PLUMBING:  # an entry taken before we walked (should not happen)
        return _caller_site(frame)
    line = _line_at(frame.f_code, lasti)
    return (frame.f_code, line if line is not None else frame.f_lineno)


def _chain(lock: Any) -> list[Any]:
    """The locks of a stack, bottom first."""
    found = []
    seen = 0
    while lock is not None and seen < 10_000:
        found.append(lock)
        lock = lock._below
        seen += 1
    found.reverse()
    return found


def held_by_thread() -> dict[int, list[Held]]:
    return {
        ident: [Held(lock, _site_of(lock._frame, lock._lasti)) for lock in _chain(top)]
        for ident, top in list(_top.items()) if top is not None
    }


def waits() -> dict[int, Wait]:
    return dict(_waits)


def unwind(ident: int, report: str) -> None:
    """Ask thread ``ident`` to raise DeadlockError(report) from its blocked wait."""
    _unwound[ident] = report


def is_unwound(ident: int) -> bool:
    return ident in _unwound


def forget_unwound(idents: Iterable[int]) -> None:
    for ident in idents:
        _unwound.pop(ident, None)


def unwound_idents() -> set[int]:
    return set(_unwound)


def _unwind_error(report: str) -> DeadlockError:
    error = DeadlockError(report)
    error.unwound_by_plugin = True  # type: ignore[attr-defined]
    return error


def _check_timeout(blocking: bool, timeout: float) -> None:
    # The same checks and messages as _thread.lock.acquire.
    if not blocking and timeout != -1:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0 and timeout != -1:
        raise ValueError("timeout value must be a non-negative number")


def _blocking_acquire(raw: Any, timeout: float | None, kind: str, target: Any) -> bool:
    """Acquire ``raw`` as a watched wait, in slices, unwinding on request.

    The first slice is not recorded: most waits end within it (a notify, a
    release that was about to come), and a deadlock is only one after
    ``deadlock_timeout``, which is longer than a slice.
    """
    __tracebackhide__ = True
    me = _get_ident()
    if _unwound:
        report = _unwound.get(me)
        if report is not None:
            raise _unwind_error(report)
    timed = timeout is not None and timeout >= 0
    now = _monotonic()
    piece = SLICE if not timed or timeout > SLICE else timeout  # type: ignore[operator]
    if raw.acquire(True, piece):
        return True
    deadline = now + timeout if timed else None  # type: ignore[operator]
    wait = _waits[me] = Wait(kind, target, timed, now)
    if on_wait is not None:
        on_wait(wait)
    try:
        while True:
            report = _unwound.get(me)
            if report is not None:
                raise _unwind_error(report)
            piece = SLICE
            if deadline is not None:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    return raw.acquire(False)
                piece = min(piece, remaining)
            if raw.acquire(True, piece):
                return True
    finally:
        _waits.pop(me, None)


def _record_order(lock: Any, below: Any, me: int) -> None:
    """``lock`` was just taken (blocking) by thread ``me`` holding ``below`` and what is under it."""
    serial = lock._serial
    site = None
    first = below
    while first is not None:
        if first is not lock:
            key = (first._serial, serial)
            if key not in _order:
                if site is None:
                    site = _site_of(lock._frame, lock._lasti)
                _new_edge(first, lock, key, _site_of(first._frame, first._lasti), site, me)
        first = first._below


def _new_edge(first: Any, lock: Any, key: tuple[int, int], first_site: Site | None,
              site: Site | None, me: int) -> None:
    # Not threading.current_thread(): in a thread that is starting it would
    # create a _DummyThread, whose Event takes a lock, which comes back here.
    thread = threading._active.get(me)  # type: ignore[attr-defined]
    name = thread.name if thread is not None else f"thread {me}"
    edge = OrderEdge(first, lock, name, first_site, site)
    with _order_lock:
        if key in _order:
            return
        _order[key] = edge
        path = _order_path(lock._serial, first._serial)
        if path is not None:
            _inversions.append((edge, path))


def _order_path(start: int, goal: int) -> list[OrderEdge] | None:
    """Edges of a path start -> ... -> goal in the lock-order graph, or None."""
    successors: dict[int, list[OrderEdge]] = {}
    for (a, _b), edge in _order.items():
        successors.setdefault(a, []).append(edge)
    stack: list[tuple[int, list[OrderEdge]]] = [(start, [])]
    seen = {start}
    while stack:
        node, path = stack.pop()
        for edge in successors.get(node, ()):
            nxt = edge.second._serial
            if nxt == goal:
                return [*path, edge]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, edge]))
    return None


def order_inversions() -> list[tuple[OrderEdge, list[OrderEdge]]]:
    """Each inversion: the edge that closed a cycle, and the edges it goes against."""
    return list(_inversions)


def reset_order() -> None:
    if _order or _inversions:
        with _order_lock:
            _order.clear()
            _inversions.clear()


def _took(lock: Any, blocking: bool, frame: FrameType) -> None:
    """``lock`` was just acquired by this thread from ``frame``: push it on the thread's stack."""
    me = _get_ident()
    lock._owner = me
    while frame.f_code.co_filename in _PLUMBING and frame.f_back is not None:
        frame = frame.f_back  # Condition, Queue, ...: the site is in the code that called them
    lock._frame = frame
    lock._lasti = frame.f_lasti
    below = lock._below = _top.get(me)
    _top[me] = lock
    if below is not None and blocking:
        _record_order(lock, below, me)


def _dropped(lock: Any, owner: int | None) -> None:
    """Take ``lock`` off its owner's stack (it is usually the top)."""
    if owner is None:
        return
    top = _top.get(owner)
    if top is lock:
        _top[owner] = lock._below
    else:
        while top is not None:
            if top._below is lock:
                top._below = lock._below
                break
            top = top._below
    lock._below = None
    lock._frame = None


# id(lock) -> the name code uses for it ("a", "self._lock"), filled by name_locks().
lock_names: dict[int, str] = {}


def _describe(lock: Any, kind: str) -> str:
    name = lock_names.get(id(lock))
    label = f"{name!r} ({kind}#{lock._serial}" if name else f"{kind}#{lock._serial} ("
    return f"{label}{', ' if name else ''}created at {format_site(lock.created)})"


def name_locks(frames: Iterable[FrameType | None]) -> None:
    """Find the names the code uses for watched locks, in the locals of these stacks."""
    lock_names.clear()
    kinds = (InstrumentedLock, InstrumentedRLock)
    for top in frames:
        frame = top
        while frame is not None:
            if frame.f_code.co_filename != _OUR_FILE:
                for name, value in list(frame.f_locals.items()):
                    if isinstance(value, kinds):
                        lock_names.setdefault(id(value), name)
                    elif name == "self" and hasattr(value, "__dict__"):
                        for attribute, inner in list(vars(value).items()):
                            if isinstance(inner, kinds):
                                lock_names.setdefault(id(inner), f"self.{attribute}")
            frame = frame.f_back


class InstrumentedLock:
    """``threading.Lock`` that knows its owner, its waiters and where it was taken.

    The uncontended path is a non-blocking acquire of the real lock, then the
    owner, the caller's frame and offset (the line is worked out only for a
    report), and a push on the owner's stack of held locks.
    """

    __slots__ = ("_raw", "_owner", "_below", "_frame", "_lasti", "_serial", "created", "__weakref__")

    def __init__(self) -> None:
        self._raw = _allocate_lock()
        self._owner: int | None = None
        self._below: Any = None
        self._frame: FrameType | None = None
        self._lasti = 0
        self._serial = next(_serials)
        self.created = _caller_site(_getframe(1))

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout != -1:
            _check_timeout(blocking, timeout)
        if self._raw.acquire(False):
            _took(self, blocking, _getframe(1))
            return True
        if not blocking or not _blocking_acquire(self._raw, timeout, "acquire", self):
            return False
        _took(self, True, _getframe(1))
        return True

    def __enter__(self) -> bool:
        # The caller first, outside the locked section (it keeps that short under contention).
        frame = _getframe(1)
        if frame.f_code.co_filename in _PLUMBING:
            frame = _user_frame(frame)
        lasti = frame.f_lasti
        if not self._raw.acquire(False):
            _blocking_acquire(self._raw, None, "acquire", self)
        me = self._owner = _get_ident()
        below = self._below = _top.get(me)
        _top[me] = self
        self._frame = frame
        self._lasti = lasti
        if below is not None:
            _record_order(self, below, me)
        return True

    def release(self) -> None:
        owner = self._owner
        if _unwound or owner is None:
            self._release_unusual(owner)
            return
        # Forget the owner before the real release: right after it, another
        # thread may take the lock and record itself as the owner.
        self._owner = None
        if _top.get(owner) is self:
            _top[owner] = self._below
            self._frame = None
        else:
            _dropped(self, owner)
        self._raw.release()

    def __exit__(self, *exc_info: object) -> None:
        owner = self._owner
        if _unwound or owner is None:
            self._release_unusual(owner)
            return
        self._owner = None  # before the real release, as in release()
        if _top.get(owner) is self:
            _top[owner] = self._below  # (a released lock's _below is never read)
            self._frame = None
        else:
            _dropped(self, owner)
        self._raw.release()

    def _release_unusual(self, owner: int | None) -> None:
        me = _get_ident()
        if _unwound and me in _unwound and (owner != me or not self._raw.locked()):
            return  # an unwound thread leaving a `with` whose lock it never got back
        if not self._raw.locked():
            raise RuntimeError("release unlocked lock")
        self._owner = None
        _dropped(self, owner)
        self._raw.release()

    def locked(self) -> bool:
        return self._raw.locked()

    @property
    def _is_owned(self) -> Callable[[], bool]:
        # threading.Condition binds this at creation: for a Lock, "owned" means
        # "locked" (what Condition's own fallback finds out by trying to acquire).
        return self._raw.locked

    def _at_fork_reinit(self) -> None:
        self._raw._at_fork_reinit()
        self._owner = None
        self._below = self._frame = None

    def __repr__(self) -> str:
        state = "locked" if self._raw.locked() else "unlocked"
        return f"<{state} Lock#{self._serial} created at {format_site(self.created)}>"

    def describe(self) -> str:
        return _describe(self, "Lock")


def _user_frame(frame: FrameType) -> FrameType:
    while frame.f_code.co_filename in _PLUMBING and frame.f_back is not None:
        frame = frame.f_back
    return frame


class InstrumentedRLock:
    """``threading.RLock`` that knows its owner, its waiters and where it was taken."""

    __slots__ = ("_raw", "_owner", "_count", "_below", "_frame", "_lasti", "_serial", "created",
                 "__weakref__")

    def __init__(self) -> None:
        self._raw = _allocate_lock()
        self._owner: int | None = None
        self._count = 0
        self._below: Any = None
        self._frame: FrameType | None = None
        self._lasti = 0
        self._serial = next(_serials)
        self.created = _caller_site(_getframe(1))

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _get_ident()
        if self._owner == me:
            if timeout != -1:
                _check_timeout(blocking, timeout)
            self._count += 1
            return True
        if timeout != -1:
            _check_timeout(blocking, timeout)
        if self._raw.acquire(False):
            self._count = 1
            _took(self, blocking, _getframe(1))
            return True
        if not blocking or not _blocking_acquire(self._raw, timeout, "acquire", self):
            return False
        self._count = 1
        _took(self, True, _getframe(1))
        return True

    __enter__ = acquire

    def release(self) -> None:
        me = _get_ident()
        if self._owner != me:
            if me in _unwound:
                return
            raise RuntimeError("cannot release un-acquired lock")
        count = self._count = self._count - 1
        if count == 0:
            self._owner = None
            if _top.get(me) is self:
                _top[me] = self._below
                self._below = self._frame = None
            else:
                _dropped(self, me)
            self._raw.release()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def locked(self) -> bool:
        return self._raw.locked()

    def _recursion_count(self) -> int:
        """How many times the calling thread holds it (multiprocessing's resource tracker asks)."""
        return self._count if self._owner == _get_ident() else 0

    # The protocol threading.Condition uses to wait on an RLock held n times.
    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> tuple[int, int | None]:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        self._owner = None
        _dropped(self, state[1])
        self._raw.release()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        if not self._raw.acquire(False):
            _blocking_acquire(self._raw, None, "acquire", self)
        self._count = state[0]
        _took(self, False, _getframe(1))

    def _acquire_restore_nowait(self, state: tuple[int, int | None]) -> bool:
        if not self._raw.acquire(False):
            return False
        self._count = state[0]
        _took(self, False, _getframe(1))
        return True

    def _at_fork_reinit(self) -> None:
        self._raw._at_fork_reinit()
        self._owner = None
        self._count = 0
        self._below = self._frame = None

    def __repr__(self) -> str:
        state = "locked" if self._raw.locked() else "unlocked"
        return f"<{state} RLock#{self._serial} count={self._count} created at {format_site(self.created)}>"

    def describe(self) -> str:
        return _describe(self, "RLock")


def _make_condition_class(base: type) -> type:
    """A subclass of the ``threading.Condition`` found at install time, with watched waits."""

    class InstrumentedCondition(base):  # type: ignore[misc, valid-type]
        def __init__(self, lock: Any = None) -> None:
            super().__init__(lock)
            self.created = _caller_site(_getframe(1))

        def wait(self, timeout: float | None = None) -> bool:
            __tracebackhide__ = True
            if not self._is_owned():
                raise RuntimeError("cannot wait on un-acquired lock")
            waiter = _allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
            saved_state = self._release_save()
            got_it = False
            try:
                got_it = _blocking_acquire(waiter, timeout, "wait", self)
            except DeadlockError:
                self._forget(waiter)
                restore = getattr(self._lock, "_acquire_restore_nowait", None)
                if restore is not None:
                    restore(saved_state)
                else:
                    self._lock.acquire(False)
                raise
            except BaseException:
                self._acquire_restore(saved_state)
                self._forget(waiter)
                raise
            self._acquire_restore(saved_state)
            if not got_it:
                self._forget(waiter)
            return got_it

        def _forget(self, waiter: Any) -> None:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

        def describe(self) -> str:
            owner = _user_object(self)
            return f"{owner} (created at {format_site(self.created)})"

    InstrumentedCondition.__name__ = "Condition"
    InstrumentedCondition.__qualname__ = "Condition"
    return InstrumentedCondition


def _user_object(condition: Any) -> str:
    """What a student sees: the Event, Semaphore, Queue… a condition belongs to."""
    return f"Condition#{id(condition) & 0xFFFF:04x}"


def describe_wait(ident: int, wait: Wait, frame: FrameType | None) -> str:
    """``Event.wait()`` / ``Lock#3.acquire()`` / ``join(Thread-2)``, from the live stack."""
    target = wait.target
    if wait.kind == "join":
        return f"join() of thread {target.name!r}"
    if wait.kind == "acquire":
        return f"{target.describe()}.acquire()"
    # A condition: name the object of the outermost plumbing frame (Event, Queue, ...).
    outer = None
    while frame is not None and frame.f_code.co_filename in _PLUMBING:
        self = frame.f_locals.get("self")
        if isinstance(self, threading.Thread):
            break  # the thread's own machinery (run, _bootstrap): not what it waits for
        if self is not None and self is not target:
            outer = (self, frame.f_code.co_name)
        frame = frame.f_back
    if outer is not None and not isinstance(outer[0], threading.Condition):
        obj, method = outer
        return f"{type(obj).__module__}.{type(obj).__qualname__}.{method}() (condition created at {format_site(target.created)})"
    return f"Condition.wait() (condition created at {format_site(target.created)})"


def user_frame(frame: FrameType | None) -> FrameType | None:
    while frame is not None and frame.f_code.co_filename in _PLUMBING:
        frame = frame.f_back
    return frame


def _is_runner(filename: str) -> bool:
    return any(part in filename for part in _RUNNER_PARTS)


_RUNNER_PARTS = ("/_pytest/", "/pluggy/", "/bin/pytest", "/execnet/", "/xdist/")


def format_stack(frame: FrameType | None, indent: str = "    ") -> str:
    """The stack of a live frame from the test's point of view.

    Without pytest's and pluggy's frames before the test function, the
    threading frames that start a thread, and this module's own frames.
    """
    if frame is None:
        return indent + "(no stack: the thread has ended)\n"
    entries = [e for e in traceback.extract_stack(frame) if e.filename != _OUR_FILE]
    runner = [i for i, e in enumerate(entries) if _is_runner(e.filename)]
    if runner:
        entries = entries[runner[-1] + 1:]
    while len(entries) > 1 and entries[0].filename == threading.__file__:
        entries = entries[1:]
    lines = "".join(traceback.format_list(entries))
    return "".join(indent + line + "\n" for line in lines.rstrip("\n").split("\n"))


# ---------------------------------------------------------------- install


@dataclass
class _Saved:
    lock: Any
    rlock: Any
    condition: Any
    join: Any


_installed: list[_Saved] = []
_original_join = threading.Thread.join


def _watched_join(self: threading.Thread, timeout: float | None = None) -> None:
    __tracebackhide__ = True
    if timeout is not None:
        return _original_join(self, timeout)
    _original_join(self, 0)  # the usual errors: not started, joining oneself
    if not self.is_alive():
        return None
    me = _get_ident()
    report = _unwound.get(me)
    if report is not None:
        raise _unwind_error(report)
    now = _monotonic()
    _original_join(self, SLICE)  # the first slice is not recorded (most joins end in it)
    if not self.is_alive():
        return None
    wait = _waits[me] = Wait("join", self, False, now)
    if on_wait is not None:
        on_wait(wait)
    try:
        while self.is_alive():
            _original_join(self, SLICE)
            report = _unwound.get(me)
            if report is not None and self.is_alive():
                raise _unwind_error(report)
    finally:
        _waits.pop(me, None)
    return None


_watched_join.__doc__ = _original_join.__doc__

# The watched subclass of the standard Condition is made once, at import, and
# named ``Condition`` here, so that it pickles by reference: a Manager started
# with ``spawn`` during a test pickles its registry, which then holds it.
Condition = _make_condition_class(threading.Condition)
_condition_classes: dict[type, type] = {threading.Condition: Condition}


def install() -> None:
    """Replace the ``threading`` factories by watched ones; nestable."""
    saved = _Saved(threading.Lock, threading.RLock, threading.Condition, threading.Thread.join)
    _installed.append(saved)
    base = saved.condition
    if not isinstance(base, type):  # someone put a function there: leave conditions alone
        condition = base
    else:
        if base not in _condition_classes:
            _condition_classes[base] = _make_condition_class(base)
        condition = _condition_classes[base]
    threading.Lock = InstrumentedLock  # type: ignore[misc, assignment]
    threading.RLock = InstrumentedRLock  # type: ignore[misc, assignment]
    threading.Condition = condition  # type: ignore[misc]
    threading.Thread.join = _watched_join  # type: ignore[method-assign]


def uninstall() -> None:
    """Put back exactly what the matching :func:`install` found."""
    saved = _installed.pop()
    threading.Lock = saved.lock  # type: ignore[misc]
    threading.RLock = saved.rlock  # type: ignore[misc]
    threading.Condition = saved.condition  # type: ignore[misc]
    threading.Thread.join = saved.join  # type: ignore[method-assign]


def is_installed() -> bool:
    return bool(_installed)


def replaced_by_someone_else() -> list[str]:
    """Names that code under test replaced behind our back while installed."""
    if not _installed:
        return []
    found = []
    if threading.Lock is not InstrumentedLock:
        found.append(f"threading.Lock (now {threading.Lock!r})")
    if threading.RLock is not InstrumentedRLock:
        found.append(f"threading.RLock (now {threading.RLock!r})")
    return found


def forget_thread(ident: int) -> None:
    _top.pop(ident, None)
    _waits.pop(ident, None)


def forget_dead_threads(alive: set[int | None]) -> None:
    """Drop what ended threads left (their idents may be reused by new threads)."""
    for ident in [i for i in list(_top) if i not in alive]:
        _top.pop(ident, None)


Callback = Callable[[str], None]
