"""Lock, RLock and Condition that obey the scheduler inside ``schedule.run``.

Each object is *dual*: called from a controlled thread it is a controlled
primitive (its state lives here, blocking hands the baton on); called from
any other thread it is the real primitive that ``threading`` offered when
the patches went in (which may itself be another tool's instrumented lock).
So an object created in a test body works both in the body and inside
``schedule.run``.  The rest of ``threading`` (Semaphore, BoundedSemaphore,
Event, Barrier, Timer) and ``queue`` are built from these by the standard
library itself.
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from typing import Any

from .._frames import assigned_name, first_user_frame, lock_label, where
from . import _real, _state
from ._state import ThreadRecord, _Abort

_controlled = _state.controlled
_get_ident = _real.get_ident
_serial = itertools.count(1)
_making = _real.allocate_lock()


def _creation_site(depth: int = 2) -> tuple[str, int] | None:
    """(file, line) of the user code that made the primitive (the stdlib may be in between)."""
    frame = first_user_frame(sys._getframe(depth))
    return None if frame is None else (frame.f_code.co_filename, frame.f_lineno)


def _label(obj: Any, site: tuple[str, int] | None, name: str | None = None) -> str:
    """The primitive as every report names it (see ``_frames.lock_label``)."""
    if site is None:
        return lock_label(obj._kind, None, name, obj._c_serial)
    return lock_label(
        obj._kind, where(*site), name or assigned_name(site[0], site[1], obj._kind), obj._c_serial
    )


def _deadline(record: ThreadRecord, timeout: float | None) -> float | None:
    if timeout is None or timeout < 0:
        return None
    return record.scheduler.clock + timeout


class _ControlledLockBase:
    """What Lock and RLock share: the real lock for other threads, the controlled state."""

    __slots__ = ("_real", "_c_owner", "_c_count", "_c_waiters", "_c_serial", "_c_site", "_c_taken",
                 "__weakref__")
    _kind = "Lock"

    def __init__(self, real: Any, count: int | None) -> None:
        self._real = real
        self._c_owner: ThreadRecord | None = None
        self._c_count = count  # None for a Lock; the recursion depth for an RLock
        self._c_waiters: list[ThreadRecord] = []
        self._c_serial = next(_serial)
        self._c_site = _creation_site(3)
        self._c_taken = -1  # the length of the scheduler's trace when it was taken (for reports)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real.acquire(blocking, timeout)
        return self._c_acquire(record, blocking, timeout)

    def release(self) -> None:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real.release()
        self._c_release(record)
        # Right after a release is where a waiter can overtake: a preemption point.
        record.scheduler.sync_point(record, f"{self._kind}.release")

    __enter__ = acquire

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _at_fork_reinit(self) -> None:
        self._real._at_fork_reinit()

    def _describe(self, name: str | None = None) -> str:
        return _label(self, self._c_site, name)

    def _c_acquire(self, record: ThreadRecord, blocking: bool, timeout: float) -> bool:
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout < 0 and timeout != -1:
            raise ValueError("timeout value must be a non-negative number")
        scheduler = record.scheduler
        scheduler.sync_point(record, f"{self._kind}.acquire", self)
        if self._c_owner is record and self._c_count:  # RLock re-entry
            self._c_count += 1
            return True
        deadline = _deadline(record, timeout if timeout != -1 else None)
        while self._c_owner is not None:
            if not blocking:
                return False
            self._c_waiters.append(record)
            if scheduler.block(record, self, deadline):
                return False
        self._take(record)
        return True

    def _take(self, record: ThreadRecord) -> None:
        self._c_owner = record
        self._c_taken = len(record.scheduler.trace)
        if self._c_count is not None:
            self._c_count = 1
        record.held.append(self)

    def _c_release(self, record: ThreadRecord) -> None:
        owner = self._c_owner
        if self._c_count is not None:  # RLock
            if owner is not record:
                raise RuntimeError("cannot release un-acquired lock")
            self._c_count -= 1
            if self._c_count:
                return
        elif owner is None:
            raise RuntimeError("release unlocked lock")
        self._c_owner = None
        if self in owner.held:
            owner.held.remove(self)
        scheduler = record.scheduler
        for waiter in self._c_waiters:
            if waiter.waiting_for is self:
                scheduler.wake(waiter)
        self._c_waiters.clear()

    def _c_reacquire(self, record: ThreadRecord, count: int) -> None:
        """Take the lock back after Condition.wait, blocking (no preemption point) if needed."""
        scheduler = record.scheduler
        try:
            while self._c_owner is not None and self._c_owner is not record:
                self._c_waiters.append(record)
                scheduler.block(record, self, None)
        except _Abort:
            # Unwinding: let the with-block that holds us release cleanly.
            pass
        self._take(record)
        if self._c_count is not None:
            self._c_count = count


class Lock(_ControlledLockBase):
    """A lock: real outside ``schedule.run``, controlled inside it.

    >>> lock = Lock()
    >>> with lock:
    ...     lock.locked()
    True
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(_state.found.get("Lock", _real.allocate_lock)(), None)

    def locked(self) -> bool:
        if _get_ident() in _controlled:
            return self._c_owner is not None
        return self._real.locked()

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<{state} {self._describe()}>"


class RLock(_ControlledLockBase):
    """A reentrant lock: real outside ``schedule.run``, controlled inside it.

    >>> lock = RLock()
    >>> with lock, lock:
    ...     lock._is_owned()
    True
    """

    __slots__ = ()
    _kind = "RLock"

    def __init__(self) -> None:
        factory = _state.found.get("RLock")
        if factory is None:
            import threading

            factory = threading._CRLock or threading._PyRLock  # type: ignore[attr-defined]
        super().__init__(factory(), 0)

    # The protocol threading.Condition uses with an RLock.
    def _is_owned(self) -> bool:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real._is_owned()
        return self._c_owner is record

    def _release_save(self) -> Any:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real._release_save()
        if self._c_owner is not record:
            raise RuntimeError("cannot release un-acquired lock")
        count = self._c_count
        self._c_count = 1
        self._c_release(record)
        return count

    def _acquire_restore(self, state: Any) -> None:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real._acquire_restore(state)
        self._c_reacquire(record, state)

    def __repr__(self) -> str:
        owner = self._c_owner.name if self._c_owner else None
        return f"<{self._describe()} owner={owner} count={self._c_count}>"


def _controlled_lock(lock: Any, what: str) -> _ControlledLockBase:
    if not isinstance(lock, _ControlledLockBase):
        raise TypeError(
            f"{what} inside schedule.run() on a Condition whose lock is {lock!r}, a lock the "
            "scheduler does not control (it was made before the test started): make the "
            "lock and the Condition in the test or in the callables"
        )
    return lock


class Condition:
    """A condition variable: real outside ``schedule.run``, controlled inside it.

    ``notify`` wakes waiters in the order they started waiting, as CPython does.

    >>> cond = Condition()
    >>> with cond:
    ...     cond.notify_all()
    """

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = RLock()
        self._lock = lock
        self._real_condition: Any = None  # made on first use outside a run
        self.acquire = lock.acquire
        self.release = lock.release
        self._c_waiters: deque[ThreadRecord] = deque()
        self._c_serial = next(_serial)
        self._c_site = _creation_site()

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        return self._lock.__exit__(*exc_info)

    @property
    def _real(self) -> Any:
        real = self._real_condition
        if real is None:
            with _making:
                real = self._real_condition
                if real is None:
                    factory = _state.found.get("Condition")
                    if factory is None:
                        import threading

                        factory = threading.Condition
                    real = self._real_condition = factory(self._lock)
        return real

    _kind = "Condition"

    def _describe(self, name: str | None = None) -> str:
        return _label(self, self._c_site, name)

    def __repr__(self) -> str:
        return f"<{self._describe()} ({len(self._c_waiters)} controlled waiters)>"

    def _owned_lock(self, record: ThreadRecord, what: str) -> Any:
        """The controlled lock under this condition, which ``record`` must hold to ``what``."""
        lock = _controlled_lock(self._lock, f"{what}()")
        if lock._c_owner is not record:
            raise RuntimeError(f"cannot {what} on un-acquired lock")
        return lock

    def wait(self, timeout: float | None = None) -> bool:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real.wait(timeout)
        lock = self._owned_lock(record, "wait")
        scheduler = record.scheduler
        scheduler.sync_point(record, "Condition.wait")
        count = lock._c_count or 0
        if lock._c_count is not None:
            lock._c_count = 1
        lock._c_release(record)
        self._c_waiters.append(record)
        timed_out = False
        try:
            timed_out = scheduler.block(record, self, _deadline(record, timeout))
        finally:
            if record in self._c_waiters:
                self._c_waiters.remove(record)
            lock._c_reacquire(record, count)
        return not timed_out

    def wait_for(self, predicate: Any, timeout: float | None = None) -> Any:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real.wait_for(predicate, timeout)
        scheduler = record.scheduler
        endtime = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = scheduler.clock + waittime
                else:
                    waittime = endtime - scheduler.clock
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        record = _controlled.get(_get_ident())
        if record is None:
            return self._real.notify(n)
        self._owned_lock(record, "notify")  # checks that the caller holds it
        scheduler = record.scheduler
        waiters = self._c_waiters
        while waiters and n > 0:
            if len(waiters) > n:  # a choice: which of them (the schedule says; oldest first by default)
                index = scheduler.notify_choice(len(waiters))
                waiter = waiters[index]
                del waiters[index]
            else:
                waiter = waiters.popleft()
            scheduler.wake(waiter)
            n -= 1

    def notify_all(self) -> None:
        self.notify(len(self._c_waiters) if _get_ident() in _controlled else sys.maxsize)

    def notifyAll(self) -> None:  # noqa: N802  (the old name, still in the stdlib)
        self.notify_all()

    def _is_owned(self) -> bool:
        return self._real._is_owned()
