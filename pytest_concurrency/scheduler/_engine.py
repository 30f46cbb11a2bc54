"""The controlled scheduler: real threads, one running at a time, baton passing.

Every controlled thread waits on its own real lock (its *gate*).  The thread
that holds the baton runs; at each preemption point it asks the schedule
whether to go on or hand the baton to another thread, and it hands it on
whenever it blocks or ends.  Because only the baton holder ever touches the
scheduler's state and the controlled primitives' state, none of it needs a
lock of its own.

The main thread (the one that called :meth:`Scheduler.run`) only starts the
threads, waits, and raises what went wrong.  The callables run in OS threads
kept between runs (``_workers``), and a thread whose callable has returned
runs the next callable that has not started yet itself: a hand-off between OS
threads costs more than a short run does.
"""

from __future__ import annotations

import contextvars
import gc
import sys
import threading
from collections.abc import Callable, Sequence
from types import CodeType, FrameType
from typing import Any

from .._frames import first_user_frame, frame_site, thread_label
from ..errors import ConcurrencyError, DeadlockError, LivelockError
from . import _import_time, _patching, _real, _state, _visible, _workers
from ._report import describe_deadlock, describe_loop, observe
from ._state import BLOCKED, FINISHED, RUNNABLE, ThreadRecord, _Abort, add_note
from ._tracing import make_tracer

DEFAULT_MAX_STEPS = 200_000
DEFAULT_FAIR_SLICE = 2_000
DEFAULT_STALL_TIMEOUT = 10.0


class UncontrolledBlockingError(ConcurrencyError):
    """A controlled thread blocked in something the scheduler does not control."""


Pairs = Sequence[tuple[int, int]]  # (position, choice)


class Decisions:
    """What a schedule decides: where the running thread is preempted, and for whom.

    Three lists of ``(position, choice)``; at each of these positions the
    running thread is preempted in favour of the ``choice``-th other runnable
    thread (modulo their number):

    - ``at_steps``: at global step ``position`` (every preemption point counts;
      step 0 decides who starts);
    - ``after_switch``: once the running thread has run ``position + 1`` steps
      since the last context switch; taken in order, one per slice, and
      deferred to the next slice if nobody else can run then (so "thread B,
      just woken, is preempted 3 steps in" is one short entry);
    - ``at_syncs``: at the ``position``-th synchronisation point (acquire,
      release, wait, sleep, start, join): there are few, so a preemption right
      after a release is easy to hit.

    Everywhere else a thread runs until it blocks or ends, and then the
    runnable thread that has waited longest goes on, unless ``at_handoffs`` says
    otherwise: ``(k, choice)`` makes the ``choice``-th runnable thread go on at
    the ``k``-th such hand-off (counting from 1) that had a choice, that is
    two or more runnable threads.  A hand-off is not a preemption.

    Two more lists count only the steps where a preemption can change an
    outcome, *visible* operations: synchronisation points, and reads and
    writes of shared state (``_visible``).  ``at_visible`` preempts at the
    ``k``-th of them (counting from 1), and ``at_unlocked`` at the ``k``-th
    read or write made by a thread that holds no lock, the few places where
    a data race can be.  The preemption comes before the operation.  The preemption comes before the
    access.  And ``at_notifies`` says which waiter a ``notify()`` wakes, at
    the ``k``-th one that had a choice (Python promises none in particular);
    by default the longest waiting.

    ``walk = (seed, period, most)`` adds a random walk: at each visible
    operation, with odds 1 in ``period`` (from a generator seeded with
    ``seed``), the running thread is preempted for a random other one, at
    most ``most`` times.  Bugs that need two or three preemptions at
    particular places among three or four threads are found this way much
    more often than by drawing each place on its own.

    ``windows = (threads, first, most)`` preempts each thread of ``threads``
    (indices, as in the story) inside its *windows*: just before a read or
    write of a name (``self.n``, a global, any subscript) it already read or
    wrote in the same slice holding no lock, from its ``first``-th such
    access on (counting from 1), at most ``most`` times in all; the thread
    that has waited longest goes on.  That is where a lost update or a torn
    read happens, however far into the run, and however many steps the other
    threads take in between: a counter seen going down by a reader (one
    writer preempted between its read and its write, the reader between its
    two reads) is ``windows=((0, 2), 1, 4)``.

    ``priorities = (seed, horizon, changes)``: a priority schedule (PCT) over
    visible operations; see :class:`~pytest_concurrency.Schedule`.

    ``lock_windows`` is the same between critical sections: just before a
    listed thread takes a lock while holding another (a lock-order deadlock
    among four threads is ``lock_windows=((0, 1, 2, 3), 1, 4)``), or takes
    a lock after taking one (the same or another) earlier in the same slice.
    """

    # Positional: a Schedule (which checks them) passes its lists in this order.
    def __init__(
        self,
        at_steps: Pairs,
        after_switch: Pairs,
        at_syncs: Pairs,
        at_handoffs: Pairs,
        at_visible: Pairs = (),
        at_unlocked: Pairs = (),
        at_notifies: Pairs = (),
        walk: tuple[int, int, int] | None = None,
        windows: tuple[tuple[int, ...], int, int] | None = None,
        lock_windows: tuple[tuple[int, ...], int, int] | None = None,
        priorities: tuple[int, int, int] | None = None,
    ) -> None:
        self.at_steps = sorted(at_steps)
        self.after_switch = list(after_switch)
        self.at_syncs = sorted(at_syncs)
        self.at_handoffs = _first_per_key(at_handoffs)
        self.at_visible = sorted((k, c) for k, c in at_visible if k > 0)
        self.at_unlocked = sorted((k, c) for k, c in at_unlocked if k > 0)
        self.at_notifies = _first_per_key(at_notifies)
        self.walk = walk
        self.windows = windows
        self.lock_windows = lock_windows
        self.priorities = priorities


def _window_set(windows: tuple[tuple[int, ...], int, int] | None) -> tuple[dict[int, int], int]:
    """``(threads, first, most)`` -> ({thread index: first}, most), or nothing to do."""
    if windows is None or windows[2] <= 0 or not windows[0]:
        return {}, 0
    return dict.fromkeys(windows[0], windows[1]), windows[2]


def _first_per_key(pairs: Pairs) -> dict[int, int]:
    chosen: dict[int, int] = {}
    for index, choice in pairs:
        chosen.setdefault(index, choice)  # two at one point: the first counts
    return chosen


_NEVER = float("inf")


class Scheduler:
    """Runs callables in controlled threads; see :func:`run` for the public face."""

    # Slots: a plain instance with this many attributes makes every one of its
    # stores a dict insertion, and a run makes a scheduler.
    __slots__ = (
        "decisions", "record_opportunities", "opportunities", "handoffs", "max_steps",
        "fair_slice", "spin_limit", "stall_timeout", "detailed", "_observing", "threads",
        "by_thread", "current", "step", "clock", "monotonic0", "wall0", "failure",
        "aborting", "abort_step", "stalled", "_stuck", "done", "trace", "switches",
        "_at_steps", "_at_steps_next", "_after_switch", "_after_switch_next", "_at_syncs",
        "_at_syncs_next", "syncs", "_slice_start", "_alone_steps", "_check_at",
        "_next_event", "_tracer", "_detail_pending", "preemptions_taken", "cpu",
        "visible", "unlocked", "_pending", "_counting", "notifies", "_walk_state", "_walk_left",
        "walked", "_windows", "_window_left", "_window_keys", "_window_slice", "_window_seen",
        "_lock_windows", "_lock_window_left", "_lock_window_seen",
        "_ranked", "_rank", "_rank_seed", "_rank_low", "_rank_changes",
        "log",
    )  # fmt: skip

    def __init__(
        self,
        decisions: Decisions | None = None,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        fair_slice: int = DEFAULT_FAIR_SLICE,
        spin_limit: int | None = None,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        detailed: bool = False,
        record_opportunities: bool = False,
    ) -> None:
        self.decisions = decisions or Decisions((), (), (), ())
        # Exhaustive exploration, in the order they came: ("step", step, n) for
        # each step where a preemption could switch to n threads, and
        # ("handoff", k, n) for each hand-off that had n threads to choose from.
        self.record_opportunities = record_opportunities
        self.opportunities: list[tuple[str, int, int]] = []
        # And, for explore_all's partial-order reduction, what happened in
        # order, while the run makes choices: see _access.events.
        self.log: list[tuple[Any, ...]] = []
        self.handoffs = 0
        self.max_steps = max_steps
        self.fair_slice = fair_slice
        # Spinning and long honest work look alike from here: half the budget,
        # so that raising max_steps for long work raises this too.
        self.spin_limit = spin_limit if spin_limit is not None else max(max_steps // 2, 1)
        self.stall_timeout = stall_timeout
        self.detailed = detailed
        self._observing = detailed or record_opportunities  # one test per step for both
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
        self._stuck: ThreadRecord | None = None
        self.done = _real.allocate_lock()
        self.done.acquire()
        # (thread index, code or None, offset or operation name, detail)
        self.trace: list[tuple[int, CodeType | None, Any, Any]] = []
        # (step, from thread, to thread, reason, what the first one now waits for)
        self.switches: list[tuple[int, int, int, str, Any]] = []
        self._at_steps = self.decisions.at_steps
        self._at_steps_next = 0
        self._after_switch = self.decisions.after_switch
        self._after_switch_next = 0
        self._at_syncs = [(k, c) for k, c in self.decisions.at_syncs if k > 0]
        self._at_syncs_next = 0
        self.syncs = 0
        self.visible = 0  # synchronisation points and reads and writes of shared state (_visible)
        self.unlocked = 0  # reads and writes of shared state made holding no lock
        self._pending = [0, 0]  # the next entry of at_visible, at_unlocked
        # Counting takes a look at every step: only while an entry is pending.
        self._counting = bool(self.decisions.at_visible or self.decisions.at_unlocked)
        walk = self.decisions.walk
        self._walk_state = 0
        self._walk_left = 0
        if walk is not None and walk[2] > 0 and walk[1] > 0:
            self._walk_state = (walk[0] * 2654435761 + 1) & 0xFFFFFFFF
            self._walk_left = walk[2]
            self._counting = True
        self.walked: list[tuple[int, int]] = []  # (visible operation, choice): the walk's preemptions
        # Thread index -> from its how-manieth window on, and how many preemptions in all.
        self._windows, self._window_left = _window_set(self.decisions.windows)
        self._lock_windows, self._lock_window_left = _window_set(self.decisions.lock_windows)
        priorities = self.decisions.priorities
        self._ranked = priorities is not None
        self._rank: dict[int, int] = {}  # thread index -> priority, once lowered or looked up
        self._rank_seed = self._rank_low = 0
        self._rank_changes: set[int] = set()  # the visible operations where the runner drops
        if priorities is not None:
            seed, horizon, changes = priorities
            self._rank_seed = seed
            state = (seed * 2654435761 + 7) & 0x7FFFFFFF
            for _ in range(changes):
                state = (state * 1103515245 + 12345) & 0x7FFFFFFF
                self._rank_changes.add((state >> 8) % horizon + 1)
        self._counting = self._counting or bool(self._window_left or self._lock_window_left or self._ranked)
        self._window_keys: set[object] = set()  # what the running thread touched in this slice
        self._window_slice = -1  # the slice those keys are of (its first step)
        self._window_seen: dict[int, int] = {}  # thread index -> windows met so far
        self._lock_window_seen: dict[int, int] = {}
        self.notifies = 0
        self._slice_start = 0
        self._alone_steps = 0
        self._check_at = min(self.max_steps, self.fair_slice)
        self._next_event: float = 0
        self._recompute_next_event()
        self._tracer = make_tracer(self._frame_tracer)
        # thread index -> (trace index, a getter of the value written, its label)
        self._detail_pending: dict[int, tuple[int, Callable[[], tuple[bool, Any]], str]] = {}
        self.preemptions_taken = 0
        self.cpu: int | None = None  # the CPU every thread of the run is kept on

    # ------------------------------------------------------------------ running

    def run(self, callables: Sequence[Callable[[], Any]]) -> list[Any]:
        __tracebackhide__ = True  # a failure is the student's: pytest shows their frames, not ours
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
        installed_here = _patching.ensure_installed()
        gc_was_enabled = gc.isenabled()
        _state.active.append(self)
        swaps = _import_time.swap_in(callables)
        try:
            for position, function in enumerate(callables):
                self._add_root(position, function)
            self.monotonic0 = _real.monotonic()
            self.wall0 = _real.wall_time()
            self._tracer.begin_run()
            # Finalizers of user code run wherever the collector strikes: not
            # under a controlled run, where they would shift the steps.
            gc.disable()
            if self.threads:
                first = self.threads[0]
                self.current = self._first_thread(first)
                if self.record_opportunities:
                    self.log.append(("run", self.current.index, "first"))
                self.cpu, cpus_before = _workers.pin_caller()  # the whole run on one CPU (see _workers)
                try:
                    self._hand_on(self.current)
                    self._wait_until_done()
                finally:
                    _workers.unpin_caller(cpus_before)
        finally:
            _import_time.swap_out(swaps)
            if gc_was_enabled:
                gc.enable()
            self._tracer.end_run()
            _state.active.remove(self)
            if installed_here:
                _patching.uninstall()
        every_thread_ended = True
        for record in self.threads:
            if record is not self._stuck_record() and not record.exited.acquire(timeout=5.0):
                every_thread_ended = False
        if every_thread_ended and self._stuck is None:
            self._let_go()
        if self.failure is not None:
            raise self.failure
        return [record.result for record in self.threads if record.root]

    def _let_go(self) -> None:
        """Break the run's reference cycles once no thread of it can run again.

        The scheduler and its threads refer to each other; left so, each run
        would wait for the cyclic garbage collector, which costs every later
        example of the test its share of a full collection.
        """
        self._tracer = None
        for record in self.threads:
            record.scheduler = None  # type: ignore[assignment]
            if isinstance(record.thread, _RunThread):
                record.thread._record = None

    def _stuck_record(self) -> ThreadRecord | None:
        return self._stuck

    def _add_root(self, position: int, function: Callable[[], Any]) -> ThreadRecord:
        name = f"T{position + 1}"
        label = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
        if label:
            label = label.rpartition(".<locals>.")[2]
        record = self._new_record(_RunThread(name), root=True)
        record.thread._record = record  # type: ignore[attr-defined]
        record.name = f"{name} ({label})" if label else name
        record.function = function
        return record

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
                lambda: self._thread_main(record), handle=thread._handle, daemon=True  # type: ignore[attr-defined]
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
            _state.controlled.pop(record.ident, None)
            self._hand_on(self._finish(record))
            record.exited.release()

    def _root_job(self, record: ThreadRecord, worker: _workers.Worker) -> bool:
        """What a kept thread does when its gate opens: True if it is kept afterwards.

        It runs ``record``'s callable and then, if the baton goes to a callable
        that has not started yet, that one too (made fresh, as a new thread
        would be): a hand-off between OS threads costs more than a short run.
        """
        _workers.pin(worker, self.cpu)
        while True:
            record.ident = worker.ident
            _state.controlled[record.ident] = record  # type: ignore[index]
            try:
                self._run_callable(record)
            except BaseException as error:  # noqa: BLE001 - ours, not the callable's: fail, don't hang
                self.failure = self.failure or error
                self._begin_abort()
            _state.controlled.pop(record.ident, None)  # type: ignore[arg-type]
            record.exited.release()
            target = self._finish(record)
            if target is not None and target.gate is None and _workers.reusable():
                worker.forget_thread_locals()
                target.gate = worker.gate
                record = target
                continue
            # Back in the pool before the baton is handed on: the next run may
            # start as soon as it is.
            kept = _workers.give_back(worker)
            self._hand_on(target)
            return kept

    def _run_callable(self, record: ThreadRecord) -> None:
        """The body of a callable of run(), in a kept OS thread, holding the baton."""
        __tracebackhide__ = True  # the error raised by run() shows the student's frames, not ours
        if self.aborting:
            return
        thread = record.thread
        thread._ident = record.ident  # type: ignore[attr-defined]
        with threading._active_limbo_lock:  # type: ignore[attr-defined]
            threading._active[record.ident] = thread  # type: ignore[attr-defined]
        self._tracer.start()
        try:
            # A new thread starts in an empty context: so must a kept one.
            record.result = contextvars.Context().run(record.function)  # type: ignore[arg-type]
        except _Abort:
            pass
        except BaseException as error:  # noqa: BLE001 - raised by run() instead
            self.thread_raised(record, error)
        finally:
            self._tracer.stop_thread()
            with threading._active_limbo_lock:  # type: ignore[attr-defined]
                threading._active.pop(record.ident, None)  # type: ignore[attr-defined]

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
        where = "the very call of its callable" if stuck is not None else "an unknown place"
        if stuck is not None and stuck.ident is not None:
            frame = sys._current_frames().get(stuck.ident)
            user = first_user_frame(frame)
            if user is not None:
                where = frame_site(user)
        name = thread_label(stuck.name) if stuck is not None else "a thread"
        self.failure = UncontrolledBlockingError(
            f"{name} has been stuck for {self.stall_timeout:.0f} s at {where}, in a call "
            "the scheduler does not control (a lock or Event created before the test "
            "started patching, e.g. at import time; real I/O; a C extension). Create the "
            "primitives inside the test (or the callables), and keep real I/O out of "
            "schedule.run()."
        )
        self.stalled = True
        self._stuck = stuck
        self.aborting = True
        self._next_event = -1  # every step of the stuck thread, should it wake, unwinds it
        if stuck is not None and stuck.ident is not None:
            # Should it ever wake, it is an ordinary thread again: it must not
            # take part in a later run (its events would count there).
            _state.controlled.pop(stuck.ident, None)
        # Unwind the others one at a time from here; the stuck one is left behind.
        for record in self.threads:
            if record is stuck or record.state is FINISHED:
                continue
            self.current = record
            self._open_gate(record)
            record.exited.acquire(timeout=5.0)
            record.exited.release()

    # ---------------------------------------------------------- the decisions

    def _first_thread(self, first: ThreadRecord) -> ThreadRecord:
        # A preemption at step 0 chooses who starts.
        if self.record_opportunities and len(self.threads) > 1:
            self.opportunities.append(("step", 0, len(self.threads) - 1))
            self.log.append(("first", tuple(t.index for t in self.threads[1:])))
        if self._at_steps and self._at_steps[0][0] == 0:
            choice = self._at_steps[0][1]
            self._at_steps_next = 1
            self._recompute_next_event()
            others = self.threads[1:]
            if others:
                self.preemptions_taken += 1
                chosen = others[choice % len(others)]
                self.switches.append((0, first.index, chosen.index, "preempted", None))
                return chosen
        return first

    def _recompute_next_event(self) -> None:
        """The next step at which _decide has something to do (one comparison per step)."""
        if self._counting:
            self._next_event = 0  # every step
            return
        next_event: float = self._check_at
        at_steps = self._at_steps
        while self._at_steps_next < len(at_steps) and at_steps[self._at_steps_next][0] <= self.step:
            self._at_steps_next += 1  # two preemptions at one step: the first one counts
        if self._at_steps_next < len(at_steps):
            next_event = min(next_event, at_steps[self._at_steps_next][0])
        if self._after_switch_next < len(self._after_switch):
            fire = self._slice_start + self._after_switch[self._after_switch_next][0] + 1
            if fire > self.step:
                next_event = min(next_event, fire)
        self._next_event = next_event

    def _frame_tracer(self, code: CodeType) -> Callable[[FrameType, str, object], Any]:
        """The trace function of one frame of user code (``sys.settrace``, 3.10/3.11).

        What :meth:`_on_step` does, written out for the common case (nothing
        to observe, nothing to decide): it runs once per bytecode, and a call
        more per bytecode costs a third of the step.
        """
        on_step = self._on_step
        trace_append = self.trace.append

        def local(frame: FrameType, event: str, arg: object) -> Any:
            nonlocal local
            if event == "opcode":
                if self._observing:
                    on_step(code, frame.f_lasti, frame)
                else:
                    step = self.step = self.step + 1
                    record: ThreadRecord = self.current  # type: ignore[assignment]
                    record.quiet = False
                    trace_append((record.index, code, frame.f_lasti, None))
                    if step >= self._next_event:
                        self._decide(record, step)
            elif event == "return":
                # The frame is done (a generator's next resumption is a new call):
                # refer to nothing, so that this closure, which refers to itself,
                # is freed with the frame instead of by the collector.
                local = None  # type: ignore[assignment]
            return local

        return local

    def _on_instruction(self, code: CodeType, offset: int) -> None:
        """A ``sys.monitoring`` INSTRUCTION event (3.12+) in one of this run's threads.

        The frame (two calls up: the monitoring callback's caller) is read only
        for a detailed run, the one place it is used: ``sys._getframe`` is an
        audited event.
        """
        self._on_step(code, offset, sys._getframe(2) if self.detailed else None)

    def _on_step(self, code: CodeType, offset: int, frame: FrameType | None) -> None:
        """A preemption point in user code, reached by the running thread.

        The hot path: one call per bytecode of user code, so it does the least
        it can (the story's values are read only in detailed runs).
        """
        step = self.step = self.step + 1
        record: ThreadRecord = self.current  # type: ignore[assignment]
        record.quiet = False
        self.trace.append((record.index, code, offset, None))
        if self._observing:
            if self.detailed and frame is not None:
                self._record_detail(record, code, offset, frame)
            if self.record_opportunities:
                self._note_opportunity(record, step)
        if step >= self._next_event:
            self._decide(record, step)

    def sync_point(self, record: ThreadRecord, operation: str, lock: object = None) -> None:
        """A preemption point at a synchronisation operation (acquire, release, wait, sleep...).

        ``lock`` is the lock an acquire is about to take: where a window can open.
        """
        if self.aborting:
            raise _Abort
        if self.record_opportunities:  # the primitive (or thread) the operation is on
            self.log.append(("sync", record.index, sys._getframe(1).f_locals.get("self")))
        if record.quiet:
            return
        step = self.step = self.step + 1
        self.trace.append((record.index, None, operation, None))
        if self.record_opportunities:
            self._note_opportunity(record, step)
        sync = self.syncs = self.syncs + 1
        if self._counting and self._count_visible(record, sync=True, lock=lock):
            return
        at_syncs = self._at_syncs
        if self._at_syncs_next < len(at_syncs) and at_syncs[self._at_syncs_next][0] == sync:
            choice = at_syncs[self._at_syncs_next][1]
            while self._at_syncs_next < len(at_syncs) and at_syncs[self._at_syncs_next][0] <= sync:
                self._at_syncs_next += 1
            if self._preempt(record, choice):
                return
        if step >= self._next_event:
            self._decide(record, step)

    def _note_opportunity(self, record: ThreadRecord, step: int) -> None:
        others = tuple(t.index for t in self.threads if t.state is RUNNABLE and t is not record)
        if not self.aborting:
            if others:
                self.opportunities.append(("step", step, len(others)))
            self.log.append(("step", record.index, step, others, len(self.trace) - 1))

    def _others(self, record: ThreadRecord) -> list[ThreadRecord]:
        """The threads that could run instead of ``record``, in thread order."""
        return [t for t in self.threads if t.state is RUNNABLE and t is not record]

    def _preempt(self, record: ThreadRecord, choice: int) -> bool:
        others = self._others(record)
        if not others:
            return False
        self.preemptions_taken += 1
        self._switch(record, others[choice % len(others)], "preempted")
        return True

    def _decide(self, record: ThreadRecord, step: int) -> None:
        if self.stalled:
            raise _Abort
        if self.aborting:
            if step - self.abort_step > 10_000:  # a thread that swallows its unwinding
                raise _Abort
            return
        if step >= self.max_steps:
            self._fail(
                LivelockError(
                    f"the run went past its budget of {self.max_steps:,} steps "
                    "(schedules(max_steps=...) to allow more); " + self._livelock_story(record)
                ),
                record,
            )
        if self._counting and self._count_visible(record, sync=False):
            return
        at_steps = self._at_steps
        if self._at_steps_next < len(at_steps) and at_steps[self._at_steps_next][0] == step:
            choice = at_steps[self._at_steps_next][1]
            self._at_steps_next += 1
            if self._preempt(record, choice):
                return
        after_switch = self._after_switch
        if (
            self._after_switch_next < len(after_switch)
            and step == self._slice_start + after_switch[self._after_switch_next][0] + 1
        ):
            choice = after_switch[self._after_switch_next][1]
            if self._preempt_after_switch(record, choice):
                return
        if step >= self._check_at:
            self._time_slice(record, step)
        self._recompute_next_event()

    def _count_visible(self, record: ThreadRecord, sync: bool, lock: object = None) -> bool:
        """Count the step just traced if it is visible to other threads; True if it preempted."""
        if not sync:
            _, code, offset, _ = self.trace[-1]
            if code is None or offset not in _visible.data_offsets(code):
                return False
        decisions = self.decisions
        visible = self.visible = self.visible + 1
        choice = _due(decisions.at_visible, self._pending, 0, visible)
        if not sync and not record.held:
            unlocked = self.unlocked = self.unlocked + 1
            also = _due(decisions.at_unlocked, self._pending, 1, unlocked)
            choice = also if choice is None else choice
        if choice is None and self._walk_left:
            choice = self._walk_step(visible)
        if choice is None and self._ranked:
            choice = self._priority_step(record, visible)
        self._counting = (
            self._pending[0] < len(decisions.at_visible)
            or self._pending[1] < len(decisions.at_unlocked)
            or self._walk_left > 0
            or self._window_left > 0
            or self._lock_window_left > 0
            or self._ranked
        )
        if choice is not None:
            return self._preempt(record, choice)
        if not sync:
            if self._window_left and not record.held and record.index in self._windows:
                _, code, offset, _ = self.trace[-1]
                return self._window_step(record, _visible.data_keys(code)[offset], locks=False)  # type: ignore[arg-type]
        elif lock is not None and self._lock_window_left and record.index in self._lock_windows:
            # Held: a lock taken while holding another opens a window at once.
            return self._window_step(record, None if record.held else "lock", locks=True)
        return False

    def _window_step(self, record: ThreadRecord, key: object, locks: bool) -> bool:
        """Preempt ``record`` if touching ``key`` opens one of its windows (None: it does)."""
        if self._window_slice != self._slice_start:
            self._window_slice = self._slice_start
            self._window_keys.clear()
        if key is not None and key not in self._window_keys:
            self._window_keys.add(key)
            return False
        seen_by = self._lock_window_seen if locks else self._window_seen
        seen = seen_by[record.index] = seen_by.get(record.index, 0) + 1
        if seen < (self._lock_windows if locks else self._windows)[record.index]:
            return False
        others = self._others(record)
        if not others:
            return False
        if locks:
            self._lock_window_left -= 1
        else:
            self._window_left -= 1
        self.preemptions_taken += 1
        self._switch(record, min(others, key=_longest_waiting), "preempted")
        return True

    def _priority(self, index: int) -> int:
        """Thread ``index``'s priority: drawn from the seed (distinct per thread), until lowered."""
        rank = self._rank.get(index)
        if rank is None:
            mixed = ((self._rank_seed + 1) * 0x9E3779B1 ^ (index + 1) * 0x85EBCA6B) & 0xFFFFFFFF
            rank = self._rank[index] = (mixed >> 8) * 64 + index + 1  # > 0: above every lowered one
        return rank

    def _priority_step(self, record: ThreadRecord, visible: int) -> int | None:
        """The priority schedule at this visible operation: who of the others goes on, if anyone."""
        if visible in self._rank_changes:
            self._rank_low -= 1
            self._rank[record.index] = self._rank_low  # below every other thread, from now on
        others = self._others(record)
        if not others:
            return None
        best = max(range(len(others)), key=lambda i: self._priority(others[i].index))
        if self._priority(others[best].index) > self._priority(record.index):
            return best
        return None

    def _walk_step(self, visible: int) -> int | None:
        """The random walk's decision at this visible operation: a choice, or None to go on."""
        # A linear congruential generator: deterministic, and cheaper than random.Random.
        state = self._walk_state = (self._walk_state * 1103515245 + 12345) & 0x7FFFFFFF
        if (state >> 8) % self.decisions.walk[1]:  # type: ignore[index]
            return None
        runnable = sum(1 for t in self.threads if t.state is RUNNABLE) - 1
        if runnable <= 0:
            return None
        self._walk_left -= 1
        choice = (state >> 20) % runnable
        self.walked.append((visible, choice))
        return choice

    def notify_choice(self, waiters: int) -> int:
        """Which of ``waiters`` (>= 2) threads waiting on a Condition a notify() wakes."""
        index = self.notifies = self.notifies + 1
        return self.decisions.at_notifies.get(index, 0) % waiters

    def _preempt_after_switch(self, record: ThreadRecord, choice: int) -> bool:
        others = self._others(record)
        if not others:
            return False  # deferred: it counts again from the next switch
        self._after_switch_next += 1
        self.preemptions_taken += 1
        self._switch(record, others[choice % len(others)], "preempted")
        return True

    def _time_slice(self, record: ThreadRecord, step: int) -> None:
        """A thread ran ``fair_slice`` steps in a row: let the others (or time) go on."""
        runnable = self._others(record)
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
                    "that cannot happen (if it is long honest work, give the schedule "
                    "more steps: schedules(max_steps=...)). " + self._livelock_story(record)
                ),
                record,
            )
        self._reset_slice()

    def _reset_slice(self) -> None:
        self._slice_start = self.step
        self._check_at = min(self.max_steps, self.step + self.fair_slice)
        self._recompute_next_event()

    def _switch(self, record: ThreadRecord, target: ThreadRecord, reason: str) -> None:
        record.queued = self.step
        if self.record_opportunities:
            self.log.append(("run", target.index, reason))
        self.switches.append(
            (self.step, record.index, target.index, reason, record.waiting_for if reason == "blocked" else None)
        )
        self.current = target
        self._reset_slice()
        self._open_gate(target)
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
            if self.record_opportunities:
                self.log.append(("abort",))
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
        if self.record_opportunities:
            self.log.append(("block", record.index, waiting_for))
        target = self._pick_next()
        if target is not None and target is not record:
            self._switch(record, target, "blocked")
        elif self.aborting:
            raise _Abort
        else:
            if self.record_opportunities:
                self.log.append(("run", record.index, "blocked"))
            self._reset_slice()
        return record.timed_out

    def wake(self, record: ThreadRecord) -> None:
        record.queued = self.step
        record.state = RUNNABLE
        record.waiting_for = None
        record.deadline = None

    def _wake_sleepers(self) -> bool:
        """Advance the virtual clock to the earliest deadline and wake who reached it."""
        timed = [(t.deadline, t) for t in self.threads if t.state is BLOCKED and t.deadline is not None]
        if not timed:
            return False
        self.clock = max(self.clock, min(deadline for deadline, _ in timed))
        for deadline, t in timed:
            if deadline <= self.clock:
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
            runnable = [t for t in self.threads if t.state is RUNNABLE]
            if not runnable and self._wake_sleepers():
                runnable = [t for t in self.threads if t.state is RUNNABLE]
            if len(runnable) == 1:
                return runnable[0]
            if runnable:
                return self._hand_off(runnable)
            live = [t for t in self.threads if t.state is not FINISHED]
            if not live:
                return None
            if all(not t.root for t in live) and all(t.thread.daemon for t in live):
                # Only daemon helpers are left, blocked for good: the program would
                # exit here, so the run is over. Unwind them quietly.
                self._begin_abort()
            elif self.failure is None:
                text, sites = describe_deadlock(self)
                self.failure = DeadlockError(text)
                self.failure.deadlock_sites = sites  # type: ignore[attr-defined]
                self._begin_abort()
            else:
                self._begin_abort()
        for t in self.threads:
            if t.state is not FINISHED and t is not self._stuck_record():
                return t
        return None

    def _hand_off(self, runnable: list[ThreadRecord]) -> ThreadRecord:
        """The running thread blocked or ended, and several can go on: who does."""
        index = self.handoffs = self.handoffs + 1
        if self.record_opportunities:
            self.opportunities.append(("handoff", index, len(runnable) - 1))
        runnable.sort(key=_longest_waiting)
        if self.record_opportunities:
            self.log.append(("handoff", index, tuple(t.index for t in runnable)))
        return runnable[self.decisions.at_handoffs.get(index, 0) % len(runnable)]

    def _finish(self, record: ThreadRecord) -> ThreadRecord | None:
        """A thread has ended: who gets the baton (None: the run is over, or stalled)."""
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
            return None
        if self.record_opportunities:
            self.log.append(("end", record.index))
        target = self._pick_next()
        self.current = target
        if target is not None:
            self._reset_slice()
            if self.record_opportunities:
                self.log.append(("run", target.index, "ended"))
        return target

    def _hand_on(self, target: ThreadRecord | None) -> None:
        """Give the baton to ``target``, or back to run() if there is none."""
        if self.stalled:
            return  # run() has given up on this run already
        if target is None:
            self.done.release()
        else:
            self._open_gate(target)

    def _open_gate(self, target: ThreadRecord) -> None:
        if target.gate is None:  # a callable's first turn: a kept thread runs it
            worker = _workers.take()
            target.gate = worker.gate
            worker.job = lambda: self._root_job(target, worker)
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
        observe(self, record, code, offset, frame)

    def _livelock_story(self, record: ThreadRecord) -> str:
        return describe_loop(self, record)


def _longest_waiting(record: ThreadRecord) -> tuple[int, int]:
    return record.queued, record.index


def _due(pairs: list[tuple[int, int]], pending: list[int], which: int, count: int) -> int | None:
    """The choice of the entry of ``pairs`` (sorted) at ``count``, if any; skips those passed."""
    choice = None
    index = pending[which]
    while index < len(pairs) and pairs[index][0] <= count:
        if pairs[index][0] == count and choice is None:
            choice = pairs[index][1]
        index += 1
    pending[which] = index
    return choice


class _RunThread(threading.Thread):
    """What ``threading.current_thread()`` is in the thread of a callable of ``run()``.

    The scheduler runs these threads itself (a ``threading.Thread`` would
    make an Event, a tstate lock... for every schedule), so ``Thread.__init__``
    is deliberately not called: only what user code reads is set.
    """

    def __init__(self, name: str) -> None:  # noqa: D107
        self._name = name
        self._daemonic = True
        self._ident = None
        self._native_id = None
        self._initialized = True
        self._target = None
        self._args = ()
        self._kwargs: dict[str, Any] = {}
        self._record: ThreadRecord | None = None

    def is_alive(self) -> bool:
        record = self._record
        return record is not None and self._ident is not None and record.state != FINISHED

    def start(self) -> None:
        raise RuntimeError("threads can only be started once")

    def join(self, timeout: float | None = None) -> None:
        if self._record is not None and _real.get_ident() in _state.controlled:
            return threading.Thread.join(self, timeout)  # the scheduler's join
        return None  # outside the run it has ended

    def __repr__(self) -> str:
        status = "started" if self.is_alive() else "stopped"
        return f"<{type(self).__name__}({self._name}, {status} {self._ident})>"


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


