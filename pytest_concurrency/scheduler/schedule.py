"""A :class:`Schedule`: one way to interleave threads, and ``run``, which plays it.

The same schedule always gives the same interleaving.  Schedules are drawn by
:func:`~pytest_concurrency.schedules` (``strategy.py``), enumerated by
:func:`~pytest_concurrency.explore_all` (``explore.py``), or written by hand
for ``@example`` and regression tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import DeadlockError, LivelockError
from . import _engine, _novelty, _real, _state, _visible
from ._engine import Decisions, Scheduler
from ._report import format_story

__all__ = ["Schedule"]


class Schedule:
    """One way to interleave threads; ``run`` plays it.  The same schedule
    always gives the same interleaving.

    A schedule is three lists of ``(position, choice)``: at each position the
    running thread is preempted and the ``choice``-th other runnable thread
    (modulo their number) goes on.  Between preemptions a thread runs until it
    blocks or ends, and then the runnable thread that has waited longest goes on.

    - ``at_steps``: at that global step (every bytecode of user code and every
      synchronisation call is a step; step 0 decides who starts);
    - ``after_switch``: once the running thread has run ``position + 1``
      steps since the last context switch (one entry per slice, in order;
      waits for a slice in which another thread can run);
    - ``at_syncs``: at that synchronisation point (acquire, release, wait,
      sleep, start, join), counting from 1.

    And where a thread blocks or ends and two or more threads could go on,
    ``at_handoffs`` may choose another one than the longest waiting: at the
    ``position``-th such hand-off (counting from 1), the ``choice``-th of them.
    A hand-off is not a preemption; :func:`explore_all` tries every choice.

    Two more kinds of position count only the reads and writes of shared
    state (attributes, subscripts, written globals and cells), where a
    preemption can change an outcome; the preemption comes just before that
    access:

    - ``at_visible``: at the ``position``-th such access (counting from 1);
    - ``at_unlocked``: at the ``position``-th one made by a thread holding no
      lock, where data races are.

    And ``at_notifies`` says which waiter ``notify()`` wakes: at the
    ``position``-th notify with more waiters than it wakes, the
    ``choice``-th of them in waiting order (by default the first).

    ``walk=(seed, period, most)`` adds a random walk over visible operations:
    at each, with odds 1 in ``period``, a preemption for a random other
    thread, at most ``most`` of them; the same seed gives the same walk.

    ``windows=(threads, first, most)`` preempts each listed thread (by index)
    just before it reads or writes again, holding no lock, a name it already
    touched in the same slice (``self.value`` read, then written: the window
    of a lost update), from its ``first``-th such access, at most ``most``
    times in all; the thread that has waited longest goes on.  Two windows
    in two threads are what an observer needs to see a counter go down.

    ``lock_windows=(threads, first, most)`` does the same between critical
    sections: just before a listed thread takes a lock while it holds
    another (where a lock-order deadlock closes), or takes a lock after
    taking one earlier in the same slice (two critical sections, of one lock or of
    two, where one was needed: a total read one account at a time).

    ``priorities=(seed, horizon, changes)`` is a priority schedule (PCT,
    Burckhardt et al. 2010) over visible operations: the seed gives every
    thread its own priority, and ``changes`` change points, drawn by the seed
    from the first ``horizon`` visible operations, each drop the running
    thread below every other.  At each visible operation the runnable thread
    with the highest priority runs.

    Write one by hand for ``@example`` or a regression test:

    >>> Schedule(at_steps=[(3, 0)])
    Schedule(at_steps=((3, 0),))
    """

    def __init__(
        self,
        at_steps: Sequence[tuple[int, int]] = (),
        *,
        after_switch: Sequence[tuple[int, int]] = (),
        at_syncs: Sequence[tuple[int, int]] = (),
        at_handoffs: Sequence[tuple[int, int]] = (),
        at_visible: Sequence[tuple[int, int]] = (),
        at_unlocked: Sequence[tuple[int, int]] = (),
        at_notifies: Sequence[tuple[int, int]] = (),
        walk: tuple[int, int, int] | None = None,
        windows: tuple[Sequence[int], int, int] | None = None,
        lock_windows: tuple[Sequence[int], int, int] | None = None,
        priorities: tuple[int, int, int] | None = None,
        max_steps: int = _engine.DEFAULT_MAX_STEPS,
    ) -> None:
        windows = _windows("windows", windows)
        lock_windows = _windows("lock_windows", lock_windows)
        if walk is not None and not _three_counts(walk):
            raise ValueError(f"Schedule(walk=...) takes (seed, period, most), integers >= 0; got {walk!r}")
        if priorities is not None and (not _three_counts(priorities) or priorities[1] < 1):
            raise ValueError(
                "Schedule(priorities=...) takes (seed, horizon, changes), integers >= 0 and a "
                f"horizon >= 1; got {priorities!r}"
            )
        given = {name: _pairs(name, items) for name, items in (
            ("at_steps", at_steps), ("after_switch", after_switch),
            ("at_syncs", at_syncs), ("at_handoffs", at_handoffs),
            ("at_visible", at_visible), ("at_unlocked", at_unlocked),
            ("at_notifies", at_notifies),
        )}  # fmt: skip
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"Schedule(max_steps=...) must be an integer >= 1, got {max_steps!r}")
        self._set(
            max_steps=max_steps, walk=walk, windows=windows, lock_windows=lock_windows,
            priorities=priorities, **given,
        )  # fmt: skip

    def _set(
        self,
        at_steps: Sequence[tuple[int, int]] = (),
        after_switch: Sequence[tuple[int, int]] = (),
        at_syncs: Sequence[tuple[int, int]] = (),
        at_handoffs: Sequence[tuple[int, int]] = (),
        at_visible: Sequence[tuple[int, int]] = (),
        at_unlocked: Sequence[tuple[int, int]] = (),
        at_notifies: Sequence[tuple[int, int]] = (),
        walk: tuple[int, int, int] | None = None,
        windows: tuple[tuple[int, ...], int, int] | None = None,
        lock_windows: tuple[tuple[int, ...], int, int] | None = None,
        priorities: tuple[int, int, int] | None = None,
        max_steps: int = _engine.DEFAULT_MAX_STEPS,
    ) -> None:
        self.walk = walk
        self.priorities = priorities
        self.windows = windows
        self.lock_windows = lock_windows
        self.at_steps = tuple(sorted(at_steps))
        self.after_switch = tuple(after_switch)
        self.at_syncs = tuple(sorted(at_syncs))
        self.at_handoffs = tuple(sorted(at_handoffs))
        self.at_visible = tuple(sorted(at_visible))
        self.at_unlocked = tuple(at_unlocked)
        self.at_notifies = tuple(sorted(at_notifies))
        self.max_steps = max_steps
        self._last: Scheduler | None = None
        self._record_opportunities = False

    @classmethod
    def _trusted(cls, **pairs: Any) -> Schedule:
        """A schedule from pairs already known to be valid (a draw): no checks, one per example."""
        schedule = cls.__new__(cls)
        schedule._set(**pairs)
        return schedule

    def __repr__(self) -> str:
        parts = []
        for name in _FIELDS:
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value!r}")
        if self.walk is not None:
            parts.append(f"walk={self.walk!r}")
        if self.windows is not None:
            parts.append(f"windows={self.windows!r}")
        if self.lock_windows is not None:
            parts.append(f"lock_windows={self.lock_windows!r}")
        if self.priorities is not None:
            parts.append(f"priorities={self.priorities!r}")
        if self.max_steps != _engine.DEFAULT_MAX_STEPS:
            parts.append(f"max_steps={self.max_steps}")
        return f"Schedule({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # The pretty-printing protocol Hypothesis follows: print the schedule, to
        # copy into @example, not the call to the decoder that drew it.
        printer.text(repr(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))

    @property
    def preemptions(self) -> int:
        """How many preemptions the schedule asks for (fewer may be possible)."""
        return (
            len(self.at_steps) + len(self.after_switch) + len(self.at_syncs)
            + len(self.at_visible) + len(self.at_unlocked)
        )  # fmt: skip

    def run(self, *callables: Callable[[], Any]) -> list[Any]:
        """Run each callable in its own controlled thread; return their results in order.

        An exception raised in any controlled thread is raised here, with the
        thread named in a note; :class:`~pytest_concurrency.DeadlockError` when
        every live thread is blocked; :class:`~pytest_concurrency.LivelockError`
        when a thread spins while nobody else can go on, or the run passes
        ``max_steps``.
        """
        __tracebackhide__ = True  # a failure is the student's: pytest shows their frames, not ours
        if _state.controlled.get(_real.get_ident()) is not None:
            raise RuntimeError(
                "schedule.run() was called inside schedule.run(): a controlled thread cannot "
                "start another controlled run. Call run() once, from the test, with every "
                "callable that should run concurrently."
            )
        detailed = _should_note()
        scheduler = Scheduler(
            Decisions(
                self.at_steps, self.after_switch, self.at_syncs, self.at_handoffs,
                self.at_visible, self.at_unlocked, self.at_notifies, self.walk, self.windows,
                self.lock_windows, self.priorities,
            ),  # fmt: skip
            max_steps=self.max_steps,
            detailed=detailed,
            record_opportunities=self._record_opportunities,
        )
        self._last = scheduler
        try:
            results = scheduler.run(callables)
            if _novelty.counting():  # a scan of the trace: not for runs nobody counts
                _novelty.ran(_interleaving(scheduler, callables))
            return results
        finally:
            if detailed and scheduler.threads and not isinstance(
                scheduler.failure, (DeadlockError, LivelockError)
            ):
                _note(format_story(scheduler))

    @property
    def story(self) -> str:
        """The interleaving of the last ``run``, one line per step (empty before any run)."""
        return format_story(self._last) if self._last is not None else ""

    @property
    def steps(self) -> int:
        """How many preemption points the last ``run`` went through."""
        return self._last.step if self._last is not None else 0


def _interleaving(scheduler: Scheduler, callables: Sequence[Callable[[], Any]]) -> tuple[Any, ...]:
    """What makes a run the same as another: what ran, and each context switch.

    A switch is placed by the visible operations (``_visible``) that ran before
    it: a preemption anywhere among the local bytecodes between two of them
    gives the same interleaving, as far as any other thread can tell.
    """
    names = tuple(getattr(c, "__qualname__", type(c).__qualname__) for c in callables)
    trace, data_offsets = scheduler.trace, _visible.data_offsets
    switches: list[tuple[int, int, int]] = []
    visible = done = 0
    for step, before, after, *_ in scheduler.switches:
        # The step a thread is switched at has not run yet: count the ones before it.
        while done < step - 1:
            _, code, offset, _ = trace[done]
            if code is None or offset in data_offsets(code):
                visible += 1
            done += 1
        switches.append((visible, before, after))
    return names, tuple(switches)


_FIELDS = (
    "at_steps", "after_switch", "at_syncs", "at_handoffs", "at_visible", "at_unlocked", "at_notifies",
)  # the order of repr(): a Schedule pasted into @example replays exactly


def _three_counts(value: Any) -> bool:
    """A tuple of three integers >= 0 (a walk's or a priority schedule's parameters)."""
    return (
        isinstance(value, tuple)
        and len(value) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)
    )


def _windows(name: str, windows: Any) -> tuple[tuple[int, ...], int, int] | None:
    if windows is None:
        return None
    try:
        threads, first, most = windows
        threads = tuple(threads)
    except (TypeError, ValueError):
        raise ValueError(
            f"Schedule({name}=...) takes (threads, first, most), e.g. ((0, 2), 1, 4); got {windows!r}"
        ) from None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (*threads, first, most)):
        raise ValueError(
            f"Schedule({name}=...): thread indices, first and most must be integers >= 0; got {windows!r}"
        )
    return tuple(sorted(set(threads))), first, most


def _pairs(what: str, items: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    cleaned: list[tuple[int, int]] = []
    for item in items:
        try:
            at, choice = item
        except (TypeError, ValueError):
            raise TypeError(f"Schedule({what}=...) takes (step, choice) pairs, got {item!r}") from None
        if (
            not isinstance(at, int)
            or not isinstance(choice, int)
            or isinstance(at, bool)
            or at < 0
            or choice < 0
        ):
            raise ValueError(
                f"Schedule({what}=...): step and choice must be integers >= 0, got {item!r}"
            )
        cleaned.append((at, choice))
    return tuple(cleaned)


def _should_note() -> bool:
    should_note = sys.modules.get("hypothesis.control")
    if should_note is None:  # Hypothesis not even imported: not inside a Hypothesis test
        return False
    try:
        return should_note.should_note()
    except Exception:  # not inside a Hypothesis test (or a Hypothesis without it)
        return False


def _note(text: str) -> None:
    from hypothesis import note

    note(text)

