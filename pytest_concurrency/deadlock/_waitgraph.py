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
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import CodeType, FrameType
from typing import Any

from .._frames import (
    assigned_name,
    caller,
    code_site,
    first_user_frame,
    is_user_file,
    lock_label,
    names_in_stacks,
    thread_label,
    where,
)
from ..errors import DeadlockError

_get_ident = _thread.get_ident
_allocate_lock = _thread.allocate_lock
_monotonic = time.monotonic
_getframe = sys._getframe

# How long a blocked wait sleeps before it looks whether it must unwind.
SLICE = 0.05

_serials = itertools.count(1)
_OUR_FILE = __file__
# The files of a primitive's own machinery: describe_wait walks past them to the
# Event, Queue or Semaphore a condition belongs to.
# (Found next to threading.py, not imported: most test runs never need them.)
_STDLIB = os.path.dirname(threading.__file__)
_PLUMBING = {_OUR_FILE, threading.__file__} | {
    os.path.join(_STDLIB, *name.split("/"))
    for name in ("queue.py", "concurrent/futures/_base.py", "concurrent/futures/thread.py")
}


Site = tuple[CodeType, int]


def _caller_site(frame: FrameType | None) -> Site | None:
    """Where user code made or took something: see ``_frames.caller``."""
    frame = caller(frame)
    return None if frame is None else (frame.f_code, frame.f_lineno)


def format_site(site: Site | None) -> str:
    """``file.py:12 in func: source line`` for a recorded site (``_frames.code_site``)."""
    return "?" if site is None else code_site(*site)


def made_at(site: Site | None) -> str | None:
    """``file.py:12``: where a lock was made."""
    return None if site is None else where(site[0].co_filename, site[1])


class Held:
    """A lock a thread holds, and where it took it."""

    __slots__ = ("lock", "site")

    def __init__(self, lock: InstrumentedLock | InstrumentedRLock, site: Site | None) -> None:
        self.lock = lock
        self.site = site

    def __repr__(self) -> str:
        return f"Held({self.lock!r}, {format_site(self.site)})"


class Wait:
    """One blocked call, from its start to its end."""

    __slots__ = ("kind", "target", "timed", "since", "serial", "guard", "raw")

    def __init__(self, kind: str, target: Any, timed: bool, since: float, guard: str | None = None,
                 raw: Any = None) -> None:
        self.kind = kind  # "acquire", "wait" (condition), "join", "watch" (a thread's state)
        self.target = target  # the lock, the condition, the thread
        self.timed = timed
        self.since = since
        self.serial = next(_serials)
        # A test helper's patience ("10 s, then the test fails"): a timed wait whose
        # timeout can only fail the test, so the watchdog counts it as untimed.
        self.guard = guard
        self.raw = raw  # the real lock an acquire or a condition wait sleeps on

    def __repr__(self) -> str:
        return f"Wait({self.kind!r}, {self.target!r}, timed={self.timed}, since={self.since:.3f})"

    def owner(self) -> int | None:
        """The ident of the thread this wait waits for (a lock's owner, a joined thread), or None."""
        if self.kind == "acquire":
            return self.target._owner
        if self.kind in ("join", "watch"):
            return self.target.ident
        return None

    def still_blocked(self) -> bool:
        """False once what it waits for has happened, though the thread has not run yet.

        A notify releases the waiter's lock, and an ending thread its join, some
        time before the woken thread runs again (long, on a loaded machine).
        Until then the record stays, and the watchdog must not count it.
        """
        if self.raw is not None:
            return bool(self.raw.locked())
        if self.kind in ("join", "watch") and isinstance(self.target, threading.Thread):
            return self.target.is_alive()
        return True


class Holder:
    """One thread's stack of held watched locks, linked through the locks themselves.

    ``top`` is the lock it took last (or None), and each held lock's ``_below``
    is the one its owner took before it.  A thread finds its own holder in a
    thread-local, which is cheaper than its ident and a shared dict.
    """

    __slots__ = ("ident", "top")

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.top: Any = None


_local = _thread._local()
# ident -> the holder of the thread that had that ident last: for reports.
_holders: dict[int, Holder] = {}


def _new_holder() -> Holder:
    """The calling thread's holder, the first time it takes a watched lock."""
    ident = _get_ident()
    holder = _local.holder = Holder(ident)
    _holders[ident] = holder
    return holder


def _after_fork_in_child() -> None:
    """Only the forking thread lives on: its stack keeps the locks still locked in the child."""
    holder = getattr(_local, "holder", None)
    _holders.clear()
    if holder is None:
        return
    kept = [lock for lock in _chain(holder.top) if lock._holder is holder and lock._raw.locked()]
    below = None
    for lock in kept:
        lock._below = below
        below = lock
    holder.top = below
    _holders[holder.ident] = holder


os.register_at_fork(after_in_child=_after_fork_in_child)


def _my_holder() -> Holder:
    try:
        return _local.holder
    except AttributeError:
        return _new_holder()


class OrderEdge:
    """Lock ``first`` was held while ``second`` was taken, by ``thread`` at these sites."""

    __slots__ = ("first", "second", "thread", "first_site", "second_site")

    def __init__(self, first: Any, second: Any, thread: str, first_site: Site | None,
                 second_site: Site | None) -> None:
        self.first = first
        self.second = second
        self.thread = thread
        self.first_site = first_site
        self.second_site = second_site

    def __repr__(self) -> str:
        return f"OrderEdge({self.first!r} -> {self.second!r} in {self.thread!r})"


# ident -> the blocked call it is in (recorded only once a wait outlasts its first slice).
_waits: dict[int, Wait] = {}
# ident -> the report: set by the detector, read by the thread between slices.
_unwound: dict[int, str] = {}
# (serial of first, serial of second) -> first time seen; and inversions found.
_order: dict[tuple[int, int], OrderEdge] = {}
# serial of first -> its edges, for the path search.
_successors: dict[int, list[OrderEdge]] = {}
# Bumped by reset_order: what a lock remembers of the order graph (``_after``) is from this one.
_generation = 0
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
    if not is_user_file(frame.f_code.co_filename):  # taken by the stdlib for the user's code
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
        for ident, top in [(i, h.top) for i, h in list(_holders.items())] if top is not None
    }


def waits() -> dict[int, Wait]:
    return dict(_waits)


def unwind(ident: int, report: str) -> None:
    """Ask thread ``ident`` to raise DeadlockError(report) from its blocked wait."""
    _unwound[ident] = report


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
    wait = _waits[me] = Wait(kind, target, timed, now, raw=raw)
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
    steps = 0
    while first is not None and steps < 10_000:  # (a stack is never that deep: bounded all the same)
        steps += 1
        if first is not lock:
            key = (first._serial, serial)
            if key not in _order:
                if site is None:
                    site = _site_of(lock._frame, lock._lasti)
                _new_edge(first, lock, key, _site_of(first._frame, first._lasti), site, me)
        first = first._below
    # Taken again right over ``below`` alone, it adds nothing: the fast paths skip this call.
    lock._after = below if below._below is None else None
    lock._after_generation = _generation


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
        _successors.setdefault(first._serial, []).append(edge)
        if path is not None:
            _inversions.append((edge, path))


def _order_path(start: int, goal: int) -> list[OrderEdge] | None:
    """Edges of a path start -> ... -> goal in the lock-order graph, or None."""
    stack: list[tuple[int, list[OrderEdge]]] = [(start, [])]
    seen = {start}
    while stack:
        node, path = stack.pop()
        for edge in _successors.get(node, ()):
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
    global _generation
    _generation += 1
    if _order or _inversions:
        with _order_lock:
            _order.clear()
            _successors.clear()
            _inversions.clear()


def _took(lock: Any, blocking: bool, frame: FrameType) -> None:
    """``lock`` was just acquired by this thread, from ``frame`` (the slow paths)."""
    holder = lock._holder = _my_holder()
    lock._frame = frame
    lock._lasti = frame.f_lasti
    below = lock._below = holder.top
    holder.top = lock
    if below is not None and blocking:
        _record_order(lock, below, holder.ident)


def _dropped(lock: Any) -> None:
    """Take ``lock`` off its holder's stack (it is usually the top)."""
    holder = lock._holder
    if holder is None:
        return
    top = holder.top
    if top is lock:
        holder.top = lock._below
    else:
        while top is not None:
            if top._below is lock:
                top._below = lock._below
                break
            top = top._below
    lock._holder = lock._below = lock._frame = None


# id(lock) -> the name code uses for it ("a", "self._lock"), set by name_locks() for one report.
lock_names: dict[int, str] = {}


def _describe(lock: Any, kind: str, serial: int | None) -> str:
    """The lock as every report names it (``_frames.lock_label``)."""
    name = lock_names.get(id(lock))
    site = lock.created
    if name is None and site is not None:
        name = assigned_name(site[0].co_filename, site[1], kind)
    return lock_label(kind, made_at(site), name, serial)


def name_locks(objects: Iterable[Any], frames: Iterable[FrameType | None]) -> None:
    """For the report being made: the names the user code on these stacks uses for these objects."""
    lock_names.clear()
    lock_names.update(names_in_stacks(objects, frames))


# The fast paths below are written out in full, method by method: on an
# uncontended lock every extra call costs a visible share of the real acquire.
# They record the calling frame and its offset as they are; a frame of
# threading, queue or concurrent.futures is walked past only when a site is
# shown (see _site_of), since its callers stay suspended in it meanwhile.
# Lock-order edges are looked for only when a lock is taken over another one,
# and not again when it is taken over the same single lock as last time
# (``_after``, valid for one generation of the order graph).


class InstrumentedLock:
    """``threading.Lock`` that knows its owner, its waiters and where it was taken.

    The uncontended path is a non-blocking acquire of the real lock, then the
    owner, the caller's frame and offset (the line is worked out only for a
    report), and a push on the owner's stack of held locks.
    """

    __slots__ = ("_raw", "_holder", "_below", "_frame", "_lasti", "_serial", "created",
                 "_after", "_after_generation", "__weakref__")

    def __init__(self) -> None:
        self._init(_caller_site(_getframe(1)))

    def _init(self, created: Site | None) -> None:
        self._raw = _allocate_lock()
        self._holder: Holder | None = None
        self._below: Any = None
        self._frame: FrameType | None = None
        self._lasti = 0
        self._serial = next(_serials)
        self.created = created
        self._after: Any = None
        self._after_generation = -1

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        __tracebackhide__ = True  # the student's `with lock:` is where it stops
        if timeout != -1:
            _check_timeout(blocking, timeout)
        raw = self._raw
        if not raw.acquire(False) and (
            not blocking or not _blocking_acquire(raw, timeout, "acquire", self)
        ):
            return False
        try:
            holder = _local.holder
        except AttributeError:
            holder = _new_holder()
        self._holder = holder
        below = self._below = holder.top
        holder.top = self
        frame = self._frame = _getframe(1)
        self._lasti = frame.f_lasti
        if below is not None and blocking and (
            self._after is not below or below._below is not None
            or self._after_generation != _generation
        ):
            _record_order(self, below, holder.ident)
        return True

    def __enter__(self) -> bool:
        __tracebackhide__ = True  # the student's `with lock:` is where it stops
        raw = self._raw
        if not raw.acquire(False):
            _blocking_acquire(raw, None, "acquire", self)
        try:
            holder = _local.holder
        except AttributeError:
            holder = _new_holder()
        self._holder = holder
        below = self._below = holder.top
        holder.top = self
        frame = self._frame = _getframe(1)
        self._lasti = frame.f_lasti
        if below is not None and (
            self._after is not below or below._below is not None
            or self._after_generation != _generation
        ):
            _record_order(self, below, holder.ident)
        return True


    def release(self) -> None:
        holder = self._holder
        if holder is None or _unwound:
            self._release_unusual()
            return
        # Forget the owner before the real release: right after it, another
        # thread may take the lock and record itself as the owner.
        self._holder = self._frame = None
        if holder.top is self:
            holder.top = self._below  # (a released lock's _below is never read)
        else:
            self._holder = holder
            _dropped(self)
        self._raw.release()

    def __exit__(self, exc_type: object = None, exc: object = None, traceback: object = None) -> None:
        holder = self._holder
        if holder is None or _unwound:
            self._release_unusual()
            return
        self._holder = self._frame = None  # before the real release, as in release()
        if holder.top is self:
            holder.top = self._below
        else:
            self._holder = holder
            _dropped(self)
        self._raw.release()

    def _release_unusual(self) -> None:
        me = _get_ident()
        if _unwound and me in _unwound and (self._owner != me or not self._raw.locked()):
            return  # an unwound thread leaving a `with` whose lock it never got back
        if not self._raw.locked():
            raise RuntimeError("release unlocked lock")
        _dropped(self)
        self._raw.release()

    def _retake(self, frame: FrameType) -> None:
        """Take it back after a condition's wait (the site: ``frame``, the wait's caller)."""
        if not self._raw.acquire(False):
            _blocking_acquire(self._raw, None, "acquire", self)
        _took(self, False, frame)

    def _retake_nowait(self, frame: FrameType) -> bool:
        if not self._raw.acquire(False):
            return False
        _took(self, False, frame)
        return True

    def locked(self) -> bool:
        return self._raw.locked()

    @property
    def _owner(self) -> int | None:
        """The ident of the thread that holds it, or None."""
        holder = self._holder
        return None if holder is None else holder.ident

    @property
    def _is_owned(self) -> Callable[[], bool]:
        # threading.Condition binds this at creation: for a Lock, "owned" means
        # "locked" (what Condition's own fallback finds out by trying to acquire).
        return self._raw.locked

    def _at_fork_reinit(self) -> None:
        _dropped(self)  # unlocked in the child: off its holder's stack
        self._raw._at_fork_reinit()  # type: ignore[attr-defined]
        self._holder = self._below = self._frame = None

    def __repr__(self) -> str:
        state = "locked" if self._raw.locked() else "unlocked"
        return f"<{state} Lock#{self._serial} made at {made_at(self.created)}>"

    def describe(self) -> str:
        return _describe(self, "Lock", self._serial)


def _user_frame(frame: FrameType) -> FrameType:
    """The frame whose line a retaken lock shows (``_frames.caller``; ``frame`` at worst)."""
    return caller(frame) or frame


class InstrumentedRLock:
    """``threading.RLock`` that knows its owner, its waiters and where it was taken."""

    __slots__ = ("_raw", "_holder", "_count", "_below", "_frame", "_lasti", "_serial",
                 "created", "_after", "_after_generation", "__weakref__")

    def __init__(self) -> None:
        self._init(_caller_site(_getframe(1)))

    def _init(self, created: Site | None) -> None:
        self._raw = _allocate_lock()
        self._holder: Holder | None = None
        self._count = 0
        self._below: Any = None
        self._frame: FrameType | None = None
        self._lasti = 0
        self._serial = next(_serials)
        self.created = created
        self._after: Any = None  # as InstrumentedLock's
        self._after_generation = -1

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        __tracebackhide__ = True  # the student's `with lock:` is where it stops
        try:
            holder = _local.holder
        except AttributeError:
            holder = _new_holder()
        if timeout != -1:
            _check_timeout(blocking, timeout)
        if self._holder is holder:
            self._count += 1
            return True
        raw = self._raw
        if not raw.acquire(False) and (
            not blocking or not _blocking_acquire(raw, timeout, "acquire", self)
        ):
            return False
        self._holder = holder
        self._count = 1
        below = self._below = holder.top
        holder.top = self
        frame = self._frame = _getframe(1)
        self._lasti = frame.f_lasti
        if below is not None and blocking and (
            self._after is not below or below._below is not None
            or self._after_generation != _generation
        ):
            _record_order(self, below, holder.ident)
        return True

    __enter__ = acquire

    def release(self) -> None:
        holder = self._holder
        if holder is None or holder is not getattr(_local, "holder", None):
            if _get_ident() in _unwound:
                return
            raise RuntimeError("cannot release un-acquired lock")
        count = self._count = self._count - 1
        if count == 0:
            self._holder = self._frame = None
            if holder.top is self:  # type: ignore[union-attr]
                holder.top = self._below  # type: ignore[union-attr]
            else:
                self._holder = holder
                _dropped(self)
            self._raw.release()

    def __exit__(self, exc_type: object = None, exc: object = None, traceback: object = None) -> None:
        holder = self._holder
        try:
            mine = holder is _local.holder
        except AttributeError:
            mine = False
        if not mine or holder is None:
            if _get_ident() in _unwound:
                return
            raise RuntimeError("cannot release un-acquired lock")
        count = self._count = self._count - 1
        if count == 0:
            self._holder = self._frame = None
            if holder.top is self:
                holder.top = self._below
            else:
                self._holder = holder
                _dropped(self)
            self._raw.release()

    def locked(self) -> bool:
        return self._raw.locked()

    @property
    def _owner(self) -> int | None:
        """The ident of the thread that holds it, or None."""
        holder = self._holder
        return None if holder is None else holder.ident

    def _is_owned(self) -> bool:
        # The protocol threading.Condition uses to wait on an RLock held n times.
        holder = self._holder
        return holder is not None and holder is getattr(_local, "holder", None)

    def _recursion_count(self) -> int:
        """How many times the calling thread holds it (multiprocessing's resource tracker asks)."""
        return self._count if self._is_owned() else 0

    def _release_save(self) -> tuple[int, int | None]:
        if not self._is_owned():
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        _dropped(self)
        self._raw.release()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        self._retake(_user_frame(_getframe(1)), state)

    def _retake(self, frame: FrameType, state: tuple[int, int | None]) -> None:
        """Take it back after a condition's wait (the site: ``frame``, the wait's caller)."""
        if not self._raw.acquire(False):
            _blocking_acquire(self._raw, None, "acquire", self)
        self._count = state[0]
        _took(self, False, frame)

    def _retake_nowait(self, frame: FrameType, state: tuple[int, int | None]) -> bool:
        if not self._raw.acquire(False):
            return False
        self._count = state[0]
        _took(self, False, frame)
        return True

    def _at_fork_reinit(self) -> None:
        _dropped(self)  # unlocked in the child: off its holder's stack
        self._raw._at_fork_reinit()  # type: ignore[attr-defined]
        self._holder = self._below = self._frame = None
        self._count = 0

    def __repr__(self) -> str:
        state = "locked" if self._raw.locked() else "unlocked"
        return f"<{state} RLock#{self._serial} count={self._count} made at {made_at(self.created)}>"

    def describe(self) -> str:
        return _describe(self, "RLock", self._serial)


def _rlock_created_at(site: Site | None) -> InstrumentedRLock:
    """An RLock whose creation site is already known (a condition's own lock)."""
    lock = InstrumentedRLock.__new__(InstrumentedRLock)
    lock._init(site)
    return lock


def _make_condition_class(base: type) -> type:
    """A subclass of the ``threading.Condition`` found at install time, with watched waits.

    A condition made on a watched Lock or RLock (or on no lock: a new RLock)
    is of one of two further subclasses, whose ``with`` takes and gives back
    the lock itself, as fast as ``with lock:``, with the caller of ``with
    condition:`` as the site.
    """

    class InstrumentedCondition(base):
        def __new__(cls, lock: Any = None) -> Any:
            if cls is InstrumentedCondition:
                if lock is None or type(lock) is InstrumentedRLock:
                    cls = on_rlock
                elif type(lock) is InstrumentedLock:
                    cls = on_lock
            return super().__new__(cls)

        def __init__(self, lock: Any = None) -> None:
            self.created = site = _caller_site(_getframe(1))
            super().__init__(_rlock_created_at(site) if lock is None else lock)

        def wait(self, timeout: float | None = None) -> bool:
            __tracebackhide__ = True
            if not self._is_owned():
                raise RuntimeError("cannot wait on un-acquired lock")
            lock = self._lock
            # A wait is a slow path: the site where the lock is taken back is found now.
            site = _user_frame(_getframe(1))
            waiter = _allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
            saved_state = self._release_save()
            got_it = False
            try:
                if timeout is not None and timeout <= 0:
                    got_it = waiter.acquire(False)  # as threading's: no wait at all
                else:
                    got_it = _blocking_acquire(waiter, timeout, "wait", self)
            except DeadlockError:
                self._forget(waiter)
                if type(lock) is InstrumentedRLock:
                    lock._retake_nowait(site, saved_state)
                elif type(lock) is InstrumentedLock:
                    lock._retake_nowait(site)
                else:
                    lock.acquire(False)
                raise
            except BaseException:
                self._restore(lock, site, saved_state)
                self._forget(waiter)
                raise
            self._restore(lock, site, saved_state)
            if not got_it:
                self._forget(waiter)
            return got_it

        def _restore(self, lock: Any, site: FrameType, saved_state: Any) -> None:
            if type(lock) is InstrumentedRLock:
                lock._retake(site, saved_state)
            elif type(lock) is InstrumentedLock:
                lock._retake(site)
            else:
                self._acquire_restore(saved_state)

        def _forget(self, waiter: Any) -> None:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

        def describe(self) -> str:
            return _describe(self, "Condition", None)

    class ConditionOnLock(InstrumentedCondition):
        # InstrumentedLock.__enter__ and __exit__, on self._lock.
        def __enter__(self) -> bool:
            __tracebackhide__ = True  # the student's `with lock:` is where it stops
            lock = self._lock
            raw = lock._raw
            if not raw.acquire(False):
                _blocking_acquire(raw, None, "acquire", lock)
            try:
                holder = _local.holder
            except AttributeError:
                holder = _new_holder()
            lock._holder = holder
            below = lock._below = holder.top
            holder.top = lock
            frame = lock._frame = _getframe(1)
            lock._lasti = frame.f_lasti
            if below is not None and (
                lock._after is not below or below._below is not None
                or lock._after_generation != _generation
            ):
                _record_order(lock, below, holder.ident)
            return True

        def __exit__(self, exc_type: object = None, exc: object = None, traceback: object = None) -> None:
            lock = self._lock
            holder = lock._holder
            if holder is None or _unwound:
                lock._release_unusual()
                return
            lock._holder = lock._frame = None
            if holder.top is lock:
                holder.top = lock._below
            else:
                lock._holder = holder
                _dropped(lock)
            lock._raw.release()

    class ConditionOnRLock(InstrumentedCondition):
        # InstrumentedRLock.acquire and __exit__, on self._lock.
        def __enter__(self) -> bool:
            __tracebackhide__ = True  # the student's `with lock:` is where it stops
            lock = self._lock
            try:
                holder = _local.holder
            except AttributeError:
                holder = _new_holder()
            if lock._holder is holder:
                lock._count += 1
                return True
            raw = lock._raw
            if not raw.acquire(False):
                _blocking_acquire(raw, None, "acquire", lock)
            lock._holder = holder
            lock._count = 1
            below = lock._below = holder.top
            holder.top = lock
            frame = lock._frame = _getframe(1)
            lock._lasti = frame.f_lasti
            if below is not None and (
                lock._after is not below or below._below is not None
                or lock._after_generation != _generation
            ):
                _record_order(lock, below, holder.ident)
            return True

        def __exit__(self, exc_type: object = None, exc: object = None, traceback: object = None) -> None:
            lock = self._lock
            holder = lock._holder
            try:
                mine = holder is _local.holder
            except AttributeError:
                mine = False
            if not mine or holder is None:
                lock.__exit__()  # its errors, or an unwound thread's leaving
                return
            count = lock._count = lock._count - 1
            if count == 0:
                lock._holder = lock._frame = None
                if holder.top is lock:
                    holder.top = lock._below
                else:
                    lock._holder = holder
                    _dropped(lock)
                lock._raw.release()

    for cls in (InstrumentedCondition, ConditionOnLock, ConditionOnRLock):
        cls.__name__ = cls.__qualname__ = "Condition"
    on_lock, on_rlock = ConditionOnLock, ConditionOnRLock
    return InstrumentedCondition


def describe_wait(ident: int, wait: Wait, frame: FrameType | None) -> str:
    """```done` (Event made at x.py:3) in Event.wait()`` / ```self.a` (Lock#1 made at
    x.py:5) in Lock.acquire()`` / ``join() of thread 'worker'``, from the live stack."""
    target = wait.target
    top = frame
    patience = f" ({wait.guard})" if wait.guard else ""
    if wait.kind == "join":
        return f"join() of {thread_label(target.name)}{patience}"
    if wait.kind == "watch":
        return f"{thread_label(target.name)} to sleep in Condition.wait{patience}"
    if wait.kind == "acquire":
        return f"{target.describe()} in {type(target).__name__.replace('Instrumented', '')}.acquire()"
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
        kind = type(obj).__qualname__
        name = names_in_stacks([obj], [top]).get(id(obj))
        site = target.created
        if name is None and site is not None:
            name = assigned_name(site[0].co_filename, site[1], kind)
        return f"{lock_label(kind, made_at(site), name)} in {kind}.{method}()"
    return f"{target.describe()} in Condition.wait()"


user_frame = first_user_frame


# ---------------------------------------------------------------- install


# What each install() found: Lock, RLock, Condition, Thread.join.
_installed: list[tuple[Any, Any, Any, Any]] = []
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


def guarded_join(thread: threading.Thread, seconds: float, guard: str) -> bool:
    """``thread.join(seconds)`` for a test helper that fails the test when ``seconds`` run
    out: recorded at once as a wait with no timeout (``guard`` says why), so that a test
    whose every thread is blocked fails after ``deadlock_timeout``, not after ``seconds``.
    Whether the thread ended; DeadlockError when the watchdog unwinds the caller."""
    __tracebackhide__ = True
    _original_join(thread, 0)
    if not thread.is_alive():
        return True
    with guarded("join", thread, guard) as unwound:
        deadline = _monotonic() + seconds
        while thread.is_alive():
            left = deadline - _monotonic()
            if left <= 0:
                return False
            _original_join(thread, min(SLICE, left))
            unwound()
    return True


@contextlib.contextmanager
def guarded(kind: str, target: Any, guard: str) -> Iterator[Callable[[], None]]:
    """Record the calling thread as waiting (``kind``, ``target``) for a helper whose patience
    running out fails the test; yields a check that raises DeadlockError once unwound."""
    me = _get_ident()

    def unwound() -> None:
        __tracebackhide__ = True
        # Forgotten as it is raised: the helper's caller fails the test from here, and its
        # own clean-up (fixtures' teardown, killing children) may wait on locks again.
        report = _unwound.pop(me, None)
        if report is not None:
            raise _unwind_error(report)

    unwound()
    wait = _waits[me] = Wait(kind, target, False, _monotonic(), guard)
    if on_wait is not None:
        on_wait(wait)
    try:
        yield unwound
    finally:
        if _waits.get(me) is wait:
            del _waits[me]

# The watched subclass of the standard Condition is made once, at import, and
# named ``Condition`` here, so that it pickles by reference: a Manager started
# with ``spawn`` during a test pickles its registry, which then holds it.
Condition = _make_condition_class(threading.Condition)
_condition_classes: dict[type, type] = {threading.Condition: Condition}


def install() -> None:
    """Replace the ``threading`` factories by watched ones; nestable."""
    saved = (threading.Lock, threading.RLock, threading.Condition, threading.Thread.join)
    _installed.append(saved)
    base = saved[2]
    if not isinstance(base, type):  # someone put a function there: leave conditions alone
        condition = base
    else:
        if base not in _condition_classes:
            _condition_classes[base] = _make_condition_class(base)
        condition = _condition_classes[base]
    threading.Lock = InstrumentedLock  # type: ignore[assignment]
    threading.RLock = InstrumentedRLock  # type: ignore[assignment]
    threading.Condition = condition  # type: ignore[assignment,misc]
    threading.Thread.join = _watched_join  # type: ignore[method-assign]
    _watch_manager_registries()


def uninstall() -> None:
    """Put back exactly what the matching :func:`install` found."""
    (threading.Lock, threading.RLock, threading.Condition,  # type: ignore[misc]
     threading.Thread.join) = _installed.pop()  # type: ignore[method-assign]


# threading's own factories, and what stands for each in a manager's registry.
_MANAGER_STAND_INS: dict[Any, Any] = {
    threading.Lock: InstrumentedLock, threading.RLock: InstrumentedRLock, threading.Condition: Condition,
}


def _watch_manager_registries() -> None:
    """Put watched factories in the registries of the managers imported so far.

    ``SyncManager`` registers ``threading.RLock`` and ``threading.Condition`` when
    ``multiprocessing.managers`` is imported, and a manager started with ``spawn`` pickles
    its registry by reference.  Had a student's module imported the managers before the
    watch was installed, pickle would find ``threading.RLock`` to be another object than
    the one registered, and no manager could be started.  The watched factories stay after
    :func:`uninstall`: they pickle from this module, and they are what a registry holds
    anyway when the managers are first imported during a test.
    """
    managers = sys.modules.get("multiprocessing.managers")
    if managers is None:
        return
    pending: list[type] = [managers.BaseManager]
    while pending:
        manager = pending.pop()
        pending.extend(manager.__subclasses__())
        registry = manager.__dict__.get("_registry")
        if not registry:
            continue
        for typeid, (factory, *rest) in list(registry.items()):
            try:
                replacement = _MANAGER_STAND_INS.get(factory, factory)
            except TypeError:  # an unhashable callable: not one of ours
                continue
            if replacement is not factory:
                registry[typeid] = (replacement, *rest)


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


def forget_dead_threads(alive: set[int | None]) -> None:
    """Drop what ended threads left (their idents may be reused by new threads)."""
    for ident in [i for i in list(_holders) if i not in alive]:
        _holders.pop(ident, None)


def threads_that_took_locks() -> int:
    """How many threads took a watched lock since they were last forgotten."""
    return len(_holders)
