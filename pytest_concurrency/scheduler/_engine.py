"""The controlled scheduler: real threads, one running at a time, baton passing.

Every controlled thread waits on its own real lock (its *gate*).  The thread
that holds the baton runs; at each preemption point it asks the schedule
whether to go on or hand the baton to another thread, and it hands it on
whenever it blocks or ends.  Because only the baton holder ever touches the
scheduler's state and the controlled primitives' state, none of it needs a
lock of its own.

The main thread (the one that called :meth:`Scheduler.run`) only starts the
threads, waits, and raises what went wrong.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Sequence
from types import CodeType, FrameType
from typing import Any

from ..errors import ConcurrencyError, DeadlockError, LivelockError
from . import _real, _state
from ._tracing import is_user_file, make_tracer

RUNNABLE = "runnable"
BLOCKED = "blocked"
FINISHED = "finished"

DEFAULT_MAX_STEPS = 200_000
DEFAULT_FAIR_SLICE = 2_000
DEFAULT_SPIN_LIMIT = 50_000
DEFAULT_STALL_TIMEOUT = 10.0


class _Abort(BaseException):
    """Unwinds a controlled thread once the run is over (deadlock, failure, livelock)."""


class UncontrolledBlockingError(ConcurrencyError):
    """A controlled thread blocked in something the scheduler does not control."""


def add_note(error: BaseException, note: str) -> None:
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # 3.10: pytest shows __notes__ too
        notes = getattr(error, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            try:
                error.__notes__ = notes  # type: ignore[attr-defined]
            except AttributeError:
                return
        notes.append(note)


class ThreadRecord:
    """One controlled thread, as the scheduler sees it."""

    __slots__ = (
        "index",
        "name",
        "thread",
        "scheduler",
        "gate",
        "exited",
        "ident",
        "state",
        "waiting_for",
        "deadline",
        "timed_out",
        "held",
        "root",
        "result",
        "blocked_at",
        "quiet",
    )

    def __init__(self, scheduler: Scheduler, index: int, thread: threading.Thread, root: bool):
        self.scheduler = scheduler
        self.index = index
        self.thread = thread
        self.name = thread.name
        self.root = root
        self.gate = _real.allocate_lock()
        self.gate.acquire()
        self.exited = _real.allocate_lock()
        self.exited.acquire()
        self.ident: int | None = None
        self.state = RUNNABLE
        self.waiting_for: Any = None
        self.deadline: float | None = None
        self.timed_out = False
        self.held: list[Any] = []
        self.result: Any = None
        self.blocked_at: int = 0
        # Until its first step of user code, a thread's sync points (the stdlib's
        # Thread bootstrap setting its _started Event) are not preemption points.
        self.quiet = True

    def __repr__(self) -> str:
        return f"<thread {self.name} {self.state}>"


class Decisions:
    """What the schedule decides: at which steps to preempt, and for whom.

    ``preemptions`` is a sorted sequence of ``(step, choice)``: at step
    ``step`` the running thread is preempted in favour of the
    ``choice``-th other runnable thread (modulo their number).  Everywhere
    else a thread runs until it blocks or ends, and then the lowest-numbered
    runnable thread goes on.
    """

    def __init__(self, preemptions: Sequence[tuple[int, int]] = ()) -> None:
        self.preemptions = sorted(preemptions)


class Scheduler:
    """Runs callables in controlled threads; see :func:`run` for the public face."""

    def __init__(
        self,
        decisions: Decisions | None = None,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        fair_slice: int = DEFAULT_FAIR_SLICE,
        spin_limit: int = DEFAULT_SPIN_LIMIT,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        detailed: bool = False,
    ) -> None:
        self.decisions = decisions or Decisions()
        self.max_steps = max_steps
        self.fair_slice = fair_slice
        self.spin_limit = spin_limit
        self.stall_timeout = stall_timeout
        self.detailed = detailed
        self.threads: list[ThreadRecord] = []
        self.by_thread: dict[threading.Thread, ThreadRecord] = {}
        self.current: ThreadRecord | None = None
        self.step = 0
        self.clock = 0.0
        self.monotonic0 = 0.0
        self.wall0 = 0.0
        self.failure: BaseException | None = None
        self.aborting = False
        self.abort_step = 0
        self.stalled = False
        self.done = _real.allocate_lock()
        self.done.acquire()
        # (thread index, code or None, offset or operation name, detail)
        self.trace: list[tuple[int, CodeType | None, Any, Any]] = []
        self.switches: list[tuple[int, int, int, str]] = []
        self._pending = list(self.decisions.preemptions)
        self._pending_at = 0
        self._next_step = self._pending[0][0] if self._pending else -1
        self._slice_start = 0
        self._alone_steps = 0
        self._check_at = min(self.max_steps, self.fair_slice)
        self._tracer = make_tracer(self._on_step)
        self._detail_pending: dict[int, tuple[Any, str, str]] = {}
        self.preemptions_taken = 0

    # ------------------------------------------------------------------ running

    def run(self, callables: Sequence[Callable[[], Any]]) -> list[Any]:
        if _state.active:
            raise RuntimeError(
                "schedule.run() is already running (in another thread): "
                "controlled runs cannot overlap"
            )
        for position, function in enumerate(callables):
            if not callable(function):
                raise TypeError(
                    f"schedule.run() takes callables; argument {position + 1} is "
                    f"{function!r} ({type(function).__name__}), which is not callable"
                )
        from . import _patching

        installed_here = _patching.ensure_installed()
        gc_was_enabled = gc.isenabled()
        _state.active.append(self)
        try:
            for position, function in enumerate(callables):
                self._add_root(position, function)
            self.monotonic0 = _real.monotonic()
            self.wall0 = _real.wall_time()
            self._tracer.begin_run()
            # Finalizers of user code run wherever the collector strikes: not
            # under a controlled run, where they would shift the steps.
            gc.disable()
            for record in self.threads:
                self._spawn(record)
            if self.threads:
                first = self.threads[0]
                self._next_preemption_at_start()
                self.current = self._first_thread(first)
                self.current.gate.release()
                self._wait_until_done()
        finally:
            if gc_was_enabled:
                gc.enable()
            self._tracer.end_run()
            _state.active.remove(self)
            if installed_here:
                _patching.uninstall()
        for record in self.threads:
            if record is not self._stuck_record():
                record.exited.acquire(timeout=5.0)
        if self.failure is not None:
            raise self.failure
        return [record.result for record in self.threads if record.root]

    def _stuck_record(self) -> ThreadRecord | None:
        return self.current if self.stalled else None

    def _add_root(self, position: int, function: Callable[[], Any]) -> None:
        name = f"T{position + 1}"
        label = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
        record_box: list[ThreadRecord] = []

        def target() -> None:
            record_box[0].result = function()

        thread = threading.Thread(target=target, name=name, daemon=True)
        record = self._new_record(thread, root=True)
        record.name = f"{name} ({label})" if label else name
        record_box.append(record)

    def _new_record(self, thread: threading.Thread, root: bool) -> ThreadRecord:
        record = ThreadRecord(self, len(self.threads), thread, root)
        self.threads.append(record)
        self.by_thread[thread] = record
        return record

    def _spawn(self, record: ThreadRecord) -> None:
        thread = record.thread
        with threading._active_limbo_lock:  # type: ignore[attr-defined]
            threading._limbo[thread] = thread  # type: ignore[attr-defined]
        if _real.start_joinable_thread is not None:
            _real.start_joinable_thread(
                lambda: self._thread_main(record), handle=thread._handle, daemon=True
            )
        else:
            _real.start_new_thread(self._thread_main, (record,))

    def _thread_main(self, record: ThreadRecord) -> None:
        record.ident = _real.get_ident()
        _state.controlled[record.ident] = record
        record.gate.acquire()  # our first turn
        try:
            if not self.aborting:
                self._tracer.start()
                try:
                    record.thread._bootstrap()  # type: ignore[attr-defined]
                finally:
                    self._tracer.stop_thread()
            else:
                self._forget_thread(record.thread)
        except _Abort:
            pass
        finally:
            del _state.controlled[record.ident]
            self._finish(record)
            record.exited.release()

    @staticmethod
    def _forget_thread(thread: threading.Thread) -> None:
        with threading._active_limbo_lock:  # type: ignore[attr-defined]
            threading._limbo.pop(thread, None)  # type: ignore[attr-defined]

    def _wait_until_done(self) -> None:
        last_progress = (self.step, len(self.trace))
        quiet = 0.0
        while not self.done.acquire(timeout=0.25):
            progress = (self.step, len(self.trace))
            if progress != last_progress:
                last_progress, quiet = progress, 0.0
                continue
            quiet += 0.25
            if quiet >= self.stall_timeout:
                self._stall()
                return

    def _stall(self) -> None:
        stuck = self.current
        where = "somewhere outside Python code"
        if stuck is not None and stuck.ident is not None:
            frame = sys._current_frames().get(stuck.ident)
            if frame is not None:
                where = describe_user_frame(frame)
        name = stuck.name if stuck is not None else "?"
        self.failure = UncontrolledBlockingError(
            f"thread {name} has been stuck for {self.stall_timeout:.0f} s at {where}, in a call "
            "the scheduler does not control (a lock or Event created before the test "
            "started patching, e.g. at import time; real I/O; a C extension). Create the "
            "primitives inside the test (or the callables), and keep real I/O out of "
            "schedule.run()."
        )
        self.stalled = True
        self.aborting = True
        # Unwind the others one at a time from here; the stuck one is left behind.
        for record in self.threads:
            if record is stuck or record.state is FINISHED:
                continue
            self.current = record
            record.gate.release()
            record.exited.acquire(timeout=5.0)
            record.exited.release()

    # ---------------------------------------------------------- the decisions

    def _next_preemption_at_start(self) -> None:
        pass

    def _first_thread(self, first: ThreadRecord) -> ThreadRecord:
        # A preemption at step 0 chooses who starts.
        if self._next_step == 0:
            choice = self._pending[0][1]
            self._advance_pending()
            others = self.threads[1:]
            if others:
                self.preemptions_taken += 1
                chosen = others[choice % len(others)]
                self.switches.append((0, first.index, chosen.index, "preempted"))
                return chosen
        return first

    def _advance_pending(self) -> None:
        self._pending_at += 1
        if self._pending_at < len(self._pending):
            self._next_step = self._pending[self._pending_at][0]
            if self._next_step <= self.step:  # two preemptions at one step: keep the first
                self._advance_pending()
        else:
            self._next_step = -1

    def _on_step(self, code: CodeType, offset: int, frame: FrameType | None) -> None:
        """A preemption point in user code, reached by the running thread."""
        step = self.step = self.step + 1
        record = self.current
        if record.quiet:  # type: ignore[union-attr]
            record.quiet = False  # type: ignore[union-attr]
        self.trace.append((record.index, code, offset, None))  # type: ignore[union-attr]
        if self.detailed and frame is not None:
            self._record_detail(record, code, offset, frame)  # type: ignore[arg-type]
        if step == self._next_step or step >= self._check_at:
            self._decide(record, step)  # type: ignore[arg-type]

    def sync_point(self, record: ThreadRecord, operation: str) -> None:
        """A preemption point at a blocking operation (acquire, wait, sleep, join...)."""
        if self.aborting:
            raise _Abort
        if record.quiet:
            return
        step = self.step = self.step + 1
        self.trace.append((record.index, None, operation, None))
        if step == self._next_step or step >= self._check_at:
            self._decide(record, step)

    def _decide(self, record: ThreadRecord, step: int) -> None:
        if self.aborting:
            if step - self.abort_step > 10_000:  # a thread that swallows its unwinding
                raise _Abort
            return
        if step >= self.max_steps:
            self._fail(
                LivelockError(
                    f"the run went past its budget of {self.max_steps:,} steps; "
                    + self._livelock_story(record)
                ),
                record,
            )
        if step == self._next_step:
            choice = self._pending[self._pending_at][1]
            self._advance_pending()
            others = [t for t in self.threads if t.state is RUNNABLE and t is not record]
            if others:
                self.preemptions_taken += 1
                self._switch(record, others[choice % len(others)], "preempted")
                return
        if step >= self._check_at:
            self._time_slice(record, step)

    def _time_slice(self, record: ThreadRecord, step: int) -> None:
        """A thread ran ``fair_slice`` steps in a row: let the others (or time) go on."""
        runnable = [t for t in self.threads if t.state is RUNNABLE and t is not record]
        if runnable:
            self._alone_steps = 0
            later = [t for t in runnable if t.index > record.index]
            self._switch(record, (later or runnable)[0], "time slice")
            return
        if self._wake_sleepers():
            # Spinning while others sleep: time passes for them as it would for real.
            self._alone_steps = 0
            self._reset_slice()
            return
        self._alone_steps += step - self._slice_start
        others_alive = [t for t in self.threads if t.state is BLOCKED]
        if others_alive and self._alone_steps >= self.spin_limit:
            self._fail(
                LivelockError(
                    f"thread {record.name} ran {self._alone_steps:,} steps while every "
                    "other thread was blocked: it is spinning, waiting for something "
                    "that cannot happen. " + self._livelock_story(record)
                ),
                record,
            )
        self._reset_slice()

    def _reset_slice(self) -> None:
        self._slice_start = self.step
        self._check_at = min(self.max_steps, self.step + self.fair_slice)

    def _switch(self, record: ThreadRecord, target: ThreadRecord, reason: str) -> None:
        self.switches.append((self.step, record.index, target.index, reason))
        self.current = target
        self._reset_slice()
        target.gate.release()
        record.gate.acquire()
        if self.aborting:
            raise _Abort

    def _fail(self, error: BaseException, record: ThreadRecord | None) -> None:
        if self.failure is None:
            self.failure = error
        self._begin_abort()
        raise _Abort

    def _begin_abort(self) -> None:
        if not self.aborting:
            self.aborting = True
            self.abort_step = self.step

    # ------------------------------------------------------ blocking and waking

    def block(self, record: ThreadRecord, waiting_for: Any, deadline: float | None) -> bool:
        """Park the running thread until woken; True if it woke because its deadline passed."""
        if self.aborting:
            raise _Abort
        record.state = BLOCKED
        record.waiting_for = waiting_for
        record.deadline = deadline
        record.timed_out = False
        record.blocked_at = self.step
        target = self._pick_next()
        if target is not record:
            self._switch(record, target, "blocked")
        elif self.aborting:
            raise _Abort
        else:
            self._reset_slice()
        return record.timed_out

    def wake(self, record: ThreadRecord) -> None:
        record.state = RUNNABLE
        record.waiting_for = None
        record.deadline = None

    def _wake_sleepers(self) -> bool:
        """Advance the virtual clock to the earliest deadline and wake who reached it."""
        timed = [t for t in self.threads if t.state is BLOCKED and t.deadline is not None]
        if not timed:
            return False
        earliest = min(t.deadline for t in timed)  # type: ignore[type-var]
        self.clock = max(self.clock, earliest)  # type: ignore[type-var]
        for t in timed:
            if t.deadline <= self.clock:  # type: ignore[operator]
                self._unlink_waiter(t)
                self.wake(t)
                t.timed_out = True
        return True

    @staticmethod
    def _unlink_waiter(record: ThreadRecord) -> None:
        waiters = getattr(record.waiting_for, "_c_waiters", None)
        if waiters is not None and record in waiters:
            waiters.remove(record)

    def _pick_next(self) -> ThreadRecord | None:
        if not self.aborting:
            for t in self.threads:
                if t.state is RUNNABLE:
                    return t
            if self._wake_sleepers():
                for t in self.threads:
                    if t.state is RUNNABLE:
                        return t
            live = [t for t in self.threads if t.state is not FINISHED]
            if not live:
                return None
            if all(not t.root for t in live) and all(t.thread.daemon for t in live):
                # Only daemon helpers are left, blocked for good: the program would
                # exit here, so the run is over. Unwind them quietly.
                self._begin_abort()
            elif self.failure is None:
                self.failure = DeadlockError(self._describe_deadlock())
                self._begin_abort()
            else:
                self._begin_abort()
        for t in self.threads:
            if t.state is not FINISHED and t is not self._stuck_record():
                return t
        return None

    def _finish(self, record: ThreadRecord) -> None:
        record.state = FINISHED
        record.waiting_for = None
        for lock in list(record.held):
            # A thread that ends holding a lock keeps it held (as for real), but an
            # unwound one must not leave the others stuck behind it.
            if self.aborting:
                release_forcibly(lock, record)
        for t in self.threads:
            if t.state is BLOCKED and t.waiting_for is record:
                self.wake(t)
        if self.stalled:
            return
        target = self._pick_next()
        if target is None:
            self.current = None
            self.done.release()
            return
        self.current = target
        self._reset_slice()
        target.gate.release()

    def thread_raised(self, record: ThreadRecord, error: BaseException | None) -> None:
        """The stdlib's Thread bootstrap caught an exception (through threading.excepthook)."""
        if error is None or isinstance(error, (_Abort, SystemExit)) or self.aborting:
            return
        add_note(error, f"raised in thread {record.name} under schedule.run()")
        self.failure = error
        self._begin_abort()

    # --------------------------------------------------------------- reporting

    def _record_detail(
        self, record: ThreadRecord, code: CodeType, offset: int, frame: FrameType
    ) -> None:
        from ._report import observe

        observe(self, record, code, offset, frame)

    def _describe_deadlock(self) -> str:
        from ._report import describe_deadlock

        return describe_deadlock(self)

    def _livelock_story(self, record: ThreadRecord) -> str:
        from ._report import describe_loop

        return describe_loop(self, record)


def release_forcibly(lock: Any, record: ThreadRecord) -> None:
    if getattr(lock, "_c_owner", None) is record:
        lock._c_owner = None
        if hasattr(lock, "_c_count"):
            lock._c_count = 0
        for waiter in lock._c_waiters:
            record.scheduler.wake(waiter)
        lock._c_waiters.clear()
    if lock in record.held:
        record.held.remove(lock)


def user_frames(frame: FrameType | None):
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            yield frame
        frame = frame.f_back


def describe_user_frame(frame: FrameType | None) -> str:
    import linecache
    import os

    for user in user_frames(frame):
        line = linecache.getline(user.f_code.co_filename, user.f_lineno).strip()
        where = f"{os.path.basename(user.f_code.co_filename)}:{user.f_lineno}"
        return f"{where} `{line}`" if line else where
    return "an unknown place (no user code on the stack)"
