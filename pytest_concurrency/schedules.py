"""``schedules()``: a Hypothesis strategy of controlled schedules, and its pytest part.

::

    from hypothesis import given
    from pytest_concurrency import schedules

    @given(schedules())
    def test_counter(schedule):
        counter = Counter()
        schedule.run(counter.incr, counter.incr)  # two threads, one at a time
        assert counter.n == 2

Each drawn :class:`Schedule` says where the running thread is preempted in
favour of another one.  Hypothesis explores schedules, shrinks a failing one
to the fewest preemptions, and replays it (``@example``, the database,
``@reproduce_failure``); the falsifying example comes with the interleaving,
one line per step.  See ``docs/race-tests.md``.
"""

from __future__ import annotations

import sys
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .errors import DeadlockError, LivelockError
from .scheduler import _engine, _patching, _real, _state
from .scheduler._engine import Decisions, Scheduler
from .scheduler._report import format_story

__all__ = ["Exploration", "Schedule", "explore_all", "schedules"]


class Schedule:
    """One way to interleave threads; ``run`` plays it.  The same schedule
    always gives the same interleaving.

    A schedule is three lists of ``(position, choice)``: at each position the
    running thread is preempted and the ``choice``-th other runnable thread
    (modulo their number) goes on.  Between preemptions a thread runs until it
    blocks or ends, and then the lowest-numbered runnable thread goes on.

    - ``at_steps``: at that global step (every bytecode of user code and every
      synchronisation call is a step; step 0 decides who starts);
    - ``after_switch``: once the running thread has run ``position + 1``
      steps since the last context switch (one entry per slice, in order;
      waits for a slice in which another thread can run);
    - ``at_syncs``: at that synchronisation point (acquire, release, wait,
      sleep, start, join), counting from 1.

    And where a thread blocks or ends and two or more threads could go on,
    ``at_handoffs`` may choose another one than the lowest-numbered: at the
    ``position``-th such hand-off (counting from 1), the ``choice``-th of them.
    A hand-off is not a preemption; :func:`explore_all` tries every choice.

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
        max_steps: int = _engine.DEFAULT_MAX_STEPS,
    ) -> None:
        pairs = [_pairs(name, items) for name, items in (
            ("at_steps", at_steps), ("after_switch", after_switch),
            ("at_syncs", at_syncs), ("at_handoffs", at_handoffs),
        )]
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"Schedule(max_steps=...) must be an integer >= 1, got {max_steps!r}")
        self._set(*pairs, max_steps)

    def _set(
        self,
        at_steps: Sequence[tuple[int, int]],
        after_switch: Sequence[tuple[int, int]],
        at_syncs: Sequence[tuple[int, int]],
        at_handoffs: Sequence[tuple[int, int]],
        max_steps: int,
    ) -> None:
        self.at_steps = tuple(sorted(at_steps))
        self.after_switch = tuple(after_switch)
        self.at_syncs = tuple(sorted(at_syncs))
        self.at_handoffs = tuple(sorted(at_handoffs))
        self.max_steps = max_steps
        self._last: Scheduler | None = None
        self._record_opportunities = False

    @classmethod
    def _trusted(
        cls,
        at_steps: list[tuple[int, int]],
        after_switch: list[tuple[int, int]],
        at_syncs: list[tuple[int, int]],
        max_steps: int,
    ) -> Schedule:
        """A schedule from pairs already known to be valid (a draw): no checks, one per example."""
        schedule = cls.__new__(cls)
        schedule._set(at_steps, after_switch, at_syncs, (), max_steps)
        return schedule

    def __repr__(self) -> str:
        parts = []
        for name in ("at_steps", "after_switch", "at_syncs", "at_handoffs"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value!r}")
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
        return len(self.at_steps) + len(self.after_switch) + len(self.at_syncs)

    def run(self, *callables: Callable[[], Any]) -> list[Any]:
        """Run each callable in its own controlled thread; return their results in order.

        An exception raised in any controlled thread is raised here, with the
        thread named in a note; :class:`~pytest_concurrency.DeadlockError` when
        every live thread is blocked; :class:`~pytest_concurrency.LivelockError`
        when a thread spins while nobody else can go on, or the run passes
        ``max_steps``.
        """
        if _state.controlled.get(_real.get_ident()) is not None:
            raise RuntimeError(
                "schedule.run() was called inside schedule.run(): a controlled thread cannot "
                "start another controlled run. Call run() once, from the test, with every "
                "callable that should run concurrently."
            )
        detailed = _should_note()
        scheduler = Scheduler(
            Decisions(self.at_steps, self.after_switch, self.at_syncs, self.at_handoffs),
            max_steps=self.max_steps,
            detailed=detailed,
            record_opportunities=self._record_opportunities,
        )
        self._last = scheduler
        try:
            return scheduler.run(callables)
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


# ------------------------------------------------------- exhaustive search


class Exploration:
    """What :func:`explore_all` did: how many schedules, and whether that was all of them."""

    def __init__(self, schedules: int, max_preemptions: int, exhausted: bool) -> None:
        self.schedules = schedules
        self.max_preemptions = max_preemptions
        self.exhausted = exhausted

    def __repr__(self) -> str:
        return (
            f"Exploration(schedules={self.schedules}, max_preemptions={self.max_preemptions}, "
            f"exhausted={self.exhausted})"
        )

    def __str__(self) -> str:
        if self.exhausted:
            return (
                f"explored all {self.schedules:,} schedules with at most "
                f"{self.max_preemptions} preemption(s): the space is exhausted"
            )
        return (
            f"explored {self.schedules:,} schedules with at most {self.max_preemptions} "
            "preemption(s) and stopped at the limit: the space is NOT exhausted"
        )


def explore_all(
    scenario: Callable[[Schedule], object],
    *,
    max_preemptions: int = 2,
    max_schedules: int = 20_000,
) -> Exploration:
    """Run ``scenario(schedule)`` for every schedule with at most ``max_preemptions``.

    Bounded exhaustive search, for small scenarios.  What it enumerates, and
    so what "exhausted" means: every placement of at most that many
    preemptions, each at a step (bytecode of user code or synchronisation
    call) where another thread could run, in favour of each of those
    threads; and, at every hand-off (a thread blocked or ended) where two or
    more threads could go on, each of them, which costs no preemption.  Each
    such schedule is a distinct interleaving and is tried exactly once,
    fewest preemptions first.  A thread that runs 2,000 steps in a row hands
    over to the next one, as in every run.  ``scenario`` must build the same
    objects on every call (runs are deterministic, so a prefix of decisions
    fixes the run up to its last one).  The first failure is raised, with
    the schedule and its interleaving in notes; otherwise the returned
    :class:`Exploration` says how many schedules there were and whether the
    space was exhausted (``max_schedules`` caps the search).  ``scenario``
    should call ``schedule.run`` once.

    >>> def scenario(schedule):
    ...     box = []
    ...     schedule.run(lambda: box.append(1), lambda: box.append(2))
    ...     assert sorted(box) == [1, 2]
    >>> explore_all(scenario, max_preemptions=1).exhausted
    True
    """
    if not callable(scenario):
        raise TypeError(f"explore_all() takes a callable scenario(schedule), got {scenario!r}")
    if not isinstance(max_preemptions, int) or isinstance(max_preemptions, bool) or max_preemptions < 0:
        raise ValueError(f"explore_all(max_preemptions=...) must be an integer >= 0, got {max_preemptions!r}")
    installed_here = _patching.ensure_installed()
    count = 0
    exhausted = True
    try:
        # Level by level: every schedule with 0 preemptions (and every choice
        # at hand-offs), then 1, then 2..., so the first failure has the
        # fewest.  A prefix of decisions fixes the run up to its last one (runs
        # are deterministic), so the opportunities after it, in the order the
        # prefix's own run met them, are exactly the next choices.
        levels: list[deque[_Prefix]] = [deque([_Prefix((), (), -1)])]
        level = 0
        while level < len(levels):
            if not levels[level]:
                level += 1
                continue
            prefix = levels[level].popleft()
            if count >= max_schedules:
                exhausted = False
                break
            schedule = Schedule(prefix.at_steps, at_handoffs=prefix.at_handoffs)
            schedule._record_opportunities = True
            count += 1
            try:
                scenario(schedule)
            except Exception as error:
                from .scheduler._engine import add_note

                add_note(
                    error,
                    f"explore_all: failed at schedule {count} ({schedule!r}, "
                    f"{len(prefix.at_steps)} preemption(s))",
                )
                if schedule._last is not None and not isinstance(
                    error, (DeadlockError, LivelockError)
                ):
                    add_note(error, format_story(schedule._last))
                raise
            if schedule._last is None:
                continue
            opportunities = schedule._last.opportunities
            for position in range(prefix.last + 1, len(opportunities)):
                kind, key, alternatives = opportunities[position]
                if kind == "handoff":
                    for choice in range(1, alternatives + 1):  # 0 is what this run did
                        handoffs = (*prefix.at_handoffs, (key, choice))
                        levels[level].append(_Prefix(prefix.at_steps, handoffs, position))
                elif len(prefix.at_steps) < max_preemptions:
                    if len(levels) == level + 1:
                        levels.append(deque())
                    for choice in range(alternatives):
                        steps = (*prefix.at_steps, (key, choice))
                        levels[level + 1].append(_Prefix(steps, prefix.at_handoffs, position))
    finally:
        if installed_here and not _installed_for_this_test:
            _patching.uninstall()
    return Exploration(count, max_preemptions, exhausted)


class _Prefix(NamedTuple):
    """The decisions of a schedule explore_all will try, and where the last one was met."""

    at_steps: tuple[tuple[int, int], ...]
    at_handoffs: tuple[tuple[int, int], ...]
    last: int  # its position in the run's opportunities (-1: none yet)


# ------------------------------------------------------------- the strategy

_our_strategies: weakref.WeakSet[Any] = weakref.WeakSet()
_installed_for_this_test = False


def schedules(*, max_preemptions: int = 4, max_steps: int = _engine.DEFAULT_MAX_STEPS) -> Any:
    """A Hypothesis strategy of :class:`Schedule` s, with at most ``max_preemptions``.

    Preemption points are spread over short, medium and long runs, so that
    bugs needing one, two or three preemptions at the right places are found
    in a few dozen examples; a failing schedule shrinks to fewer and earlier
    preemptions.

    >>> from hypothesis import given
    >>> @given(schedules(max_preemptions=2))
    ... def test_twice(schedule):
    ...     assert schedule.run(lambda: 1, lambda: 2) == [1, 2]
    """
    from hypothesis import strategies as st

    if not isinstance(max_preemptions, int) or isinstance(max_preemptions, bool) or max_preemptions < 0:
        raise ValueError(f"schedules(max_preemptions=...) must be an integer >= 0, got {max_preemptions!r}")
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"schedules(max_steps=...) must be an integer >= 1, got {max_steps!r}")

    # The whole schedule is one byte string, one to three bytes per preemption
    # (see _codes): one Hypothesis draw per example, where a draw per
    # preemption cost about as much as a short run; and the byte string's
    # shrinker, which deletes bytes from the end first and then makes each
    # byte smaller, drops preemptions and then moves the rest earlier.
    encoded = st.binary(max_size=3 * max_preemptions)

    def decode(data: bytes) -> Schedule:
        _install_for_test()
        at_steps: list[tuple[int, int]] = []
        slices: list[tuple[int, int]] = []
        syncs: list[tuple[int, int]] = []
        for code in _codes(data)[:max_preemptions]:
            kind, distance, chosen = _decode(code)
            if kind == "after_switch":
                slices.append((distance, chosen))
            elif kind == "at_step":
                # Absolute positions: deleting one preemption while shrinking
                # leaves the others where they were.
                at_steps.append((distance, chosen))  # step 0 decides who starts
            else:
                syncs.append((distance + 1, chosen))
        return Schedule._trusted(at_steps, slices, syncs, max_steps)

    strategy = encoded.map(decode)
    _our_strategies.add(strategy)
    return strategy


# Where to preempt.  The run's length is unknown before it ends, so a
# distance is drawn uniformly below one of several bounds (short, medium and
# long runs alike get their share); and distances are counted in three ways
# (see Schedule), each making a different kind of bug likely: a few steps
# after a thread starts running, at a global step, or at a synchronisation
# point.  One code encodes choice, kind, bound and distance.
_KINDS = ("after_switch", "at_step", "at_sync")
_BOUNDS = {
    "after_switch": (8, 32, 128),
    "at_step": (16, 64, 256, 1024, 8192),
    "at_sync": (8, 32),
}


def _codes(data: bytes) -> list[int]:
    """The preemption codes in a drawn byte string, in order.

    A byte below 128 is a whole (small) code; a byte from 128 to 191 starts
    a two-byte code, and from 192 a three-byte one (a far preemption, in a
    long run).  Deleting any one byte (what the shrinker tries first) drops
    or changes one preemption, not every one after it.

    >>> _codes(bytes([5, 128, 0, 7]))
    [5, 128, 7]
    """
    codes: list[int] = []
    i = 0
    while i < len(data):
        head = data[i]
        if head < 128:
            codes.append(head)
            i += 1
            continue
        width = 2 if head < 192 else 3
        tail = data[i + 1 : i + width].ljust(width - 1, b"\0")
        if width == 2:
            codes.append(128 + ((head - 128) << 8 | tail[0]))
        else:
            codes.append(_FAR + ((head - 192) << 16 | tail[0] << 8 | tail[1]))
        i += width
    return codes


_FAR = 128 + (64 << 8)  # the first three-byte code


def _decode(code: int) -> tuple[str, int, int]:
    """One preemption code -> (kind, distance, choice); 0 is the simplest.

    Small codes (one byte) are early preemptions in favour of one of the
    first two other threads; two-byte codes reach a few hundred steps,
    three-byte ones every distance of ``_BOUNDS``.

    >>> _decode(0)
    ('after_switch', 0, 0)
    >>> _decode(2 * 3 * 4)
    ('after_switch', 4, 0)
    """
    if code < 128:
        code, choice = divmod(code, 2)
        distance, kind_index = divmod(code, len(_KINDS))
        return _KINDS[kind_index], distance, choice
    code, choice = divmod(code - 128 if code < _FAR else code - _FAR, 8)
    code, kind_index = divmod(code, len(_KINDS))
    kind = _KINDS[kind_index]
    bounds = _BOUNDS[kind]
    code, bound_index = divmod(code, len(bounds))
    return kind, code % bounds[bound_index], choice


def _install_for_test() -> None:
    """Patch threading as soon as a schedule is drawn, so that objects the test body
    makes next (a Counter and its Lock) are controllable inside ``run``."""
    global _installed_for_this_test
    if _patching.ensure_installed():
        _installed_for_this_test = True


def _end_of_test() -> None:
    """Take out the patches a schedule test put in (called after its teardown)."""
    global _installed_for_this_test
    if _installed_for_this_test:
        _installed_for_this_test = False
        _patching.uninstall()


def uses_schedules(function: Any) -> bool:
    """True if ``function`` is a Hypothesis test given a :func:`schedules` strategy."""
    handle = getattr(function, "hypothesis", None)
    given = getattr(handle, "_given_kwargs", None) or {}
    return any(strategy in _our_strategies for strategy in given.values() if _weakrefable(strategy))


def _weakrefable(value: Any) -> bool:
    try:
        weakref.ref(value)
    except TypeError:
        return False
    return True
