"""``explore_all()``: every distinct interleaving of a small scenario, or every schedule up to a bound.

With ``max_preemptions=None`` the search is a dynamic partial-order
reduction (source sets and sleep sets, Abdulla et al. 2014, over the access
model of ``_access``): it runs one interleaving per class of equivalent ones
(the same steps, with every pair of conflicting steps in the same order), and
so covers every outcome the scenario can have.  With an integer it enumerates
every placement of at most that many preemptions, fewest first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from ..errors import DeadlockError, LivelockError
from . import _patching, _primitives
from ._access import Access, Event, Point, events
from ._report import format_story
from ._state import add_note
from .schedule import Schedule

__all__ = ["Exploration", "explore_all"]

class Exploration:
    """What :func:`explore_all` did: how many schedules, and whether that was all of them.

    - ``schedules``: how many times the scenario ran;
    - ``distinct``: how many of those runs were interleavings not equivalent
      to one run before (with the reduction; without it, every schedule);
    - ``complete``: True iff every distinct interleaving was covered (False
      when ``max_schedules`` cut the search, or a preemption bound left some out);
    - ``exhausted``: True iff the search ran to its end (within the bound).
    """

    def __init__(
        self,
        schedules: int,
        max_preemptions: int | None,
        exhausted: bool,
        distinct: int | None = None,
        complete: bool | None = None,
    ) -> None:
        self.schedules = schedules
        self.max_preemptions = max_preemptions
        self.exhausted = exhausted
        self.distinct = schedules if distinct is None else distinct
        self.complete = exhausted and max_preemptions is None if complete is None else complete

    def __repr__(self) -> str:
        return (
            f"Exploration(schedules={self.schedules}, distinct={self.distinct}, "
            f"max_preemptions={self.max_preemptions}, exhausted={self.exhausted}, "
            f"complete={self.complete})"
        )

    def __str__(self) -> str:
        if self.max_preemptions is None:
            if self.complete:
                return (
                    f"explored all {self.distinct:,} distinct interleavings "
                    f"({self.schedules:,} schedules): the search is complete"
                )
            return (
                f"explored {self.distinct:,} distinct interleavings ({self.schedules:,} schedules) "
                "and stopped at the limit (max_schedules): the search is NOT complete"
            )
        bound = f"with at most {self.max_preemptions} preemption(s)"
        if self.exhausted:
            tail = (
                "every interleaving, as no run had room for more"
                if self.complete
                else "not every interleaving (max_preemptions=None for all of them)"
            )
            return f"explored all {self.schedules:,} schedules {bound}: the space is exhausted; {tail}"
        return (
            f"explored {self.schedules:,} schedules {bound} and stopped at the limit: "
            "the space is NOT exhausted"
        )


def explore_all(
    scenario: Callable[[Schedule], object],
    *,
    max_preemptions: int | None = 2,
    max_schedules: int = 20_000,
) -> Exploration:
    """Run ``scenario(schedule)`` for every interleaving, or every schedule up to a bound.

    ``max_preemptions=None``: every *distinct* interleaving, by dynamic
    partial-order reduction.  Two interleavings are the same when they run
    the same steps and order every two conflicting steps (of different
    threads, one writing what the other reads or writes, or both on one
    lock) the same way; one of each is run.  The choices tried are those the
    scheduler makes: which thread goes on at each step (a preemption), and
    which goes on when one blocks or ends (a hand-off).  Which waiter a
    ``notify()`` wakes is not tried (the longest waiting, always), nor the
    order of sleepers with one deadline.  ``complete`` says whether every one
    was run (``max_schedules`` caps the search).  See docs/race-tests.md.

    An integer ``max_preemptions``: bounded exhaustive search, without
    reduction.  Every placement of at most that many preemptions, each at a
    step (bytecode of user code or synchronisation call) where another
    thread could run, in favour of each of those threads; and, at every
    hand-off where two or more threads could go on, each of them, which
    costs no preemption.  Each such schedule is tried exactly once, fewest
    preemptions first.  A thread that runs 2,000 steps in a row hands over
    to the next one, as in every run.

    ``scenario`` must build the same objects on every call (runs are
    deterministic, so a prefix of decisions fixes the run up to its last
    one) and should call ``schedule.run`` once.  The first failure is
    raised, with the schedule and its interleaving in notes; otherwise the
    returned :class:`Exploration` says how many schedules there were and
    whether that was all of them.

    >>> def scenario(schedule):
    ...     box = []
    ...     schedule.run(lambda: box.append(1), lambda: box.append(2))
    ...     assert sorted(box) == [1, 2]
    >>> explore_all(scenario, max_preemptions=1).exhausted
    True
    >>> explore_all(scenario, max_preemptions=None).complete
    True
    """
    __tracebackhide__ = True  # a failure is the scenario's: pytest shows it, not this loop
    if not callable(scenario):
        raise TypeError(f"explore_all() takes a callable scenario(schedule), got {scenario!r}")
    if max_preemptions is not None and (
        not isinstance(max_preemptions, int) or isinstance(max_preemptions, bool) or max_preemptions < 0
    ):
        raise ValueError(
            f"explore_all(max_preemptions=...) must be an integer >= 0 or None (every "
            f"interleaving), got {max_preemptions!r}"
        )
    if not isinstance(max_schedules, int) or isinstance(max_schedules, bool) or max_schedules < 1:
        raise ValueError(f"explore_all(max_schedules=...) must be an integer >= 1, got {max_schedules!r}")
    installed_here = _patching.ensure_installed()
    try:
        if max_preemptions is None:
            return _reduced(scenario, max_schedules)
        return _bounded(scenario, max_preemptions, max_schedules)
    finally:
        if installed_here and not _patching.installed_for_test():
            _patching.uninstall()


def _play(scenario: Callable[[Schedule], object], schedule: Schedule, count: int, what: str) -> None:
    """Run the scenario once under ``schedule``; a failure gets the schedule and its story."""
    __tracebackhide__ = True
    schedule._record_opportunities = True
    try:
        scenario(schedule)
    except Exception as error:
        add_note(error, f"explore_all: failed at schedule {count} ({schedule!r}, {what})")
        if schedule._last is not None and not isinstance(error, (DeadlockError, LivelockError)):
            add_note(error, format_story(schedule._last))
        raise


def _bounded(scenario: Callable[[Schedule], object], max_preemptions: int, max_schedules: int) -> Exploration:
    """Every schedule with at most ``max_preemptions``, fewest first (no reduction)."""
    __tracebackhide__ = True
    count = 0
    exhausted = True
    bound_hit = False
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
        count += 1
        _play(scenario, schedule, count, f"{len(prefix.at_steps)} preemption(s)")
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
            else:
                bound_hit = True
    return Exploration(count, max_preemptions, exhausted, complete=exhausted and not bound_hit)


class _Node:
    """A scheduling decision of the current run, and what the search knows there."""

    __slots__ = ("point", "chosen", "backtrack", "done", "sleep", "taken")

    def __init__(self, point: Point | None, chosen: int, sleep: dict[int, Access]) -> None:
        self.point = point
        self.chosen = chosen
        self.backtrack: set[int] = set()  # threads to run here (source set)
        self.done: set[int] = set()  # threads run here already
        self.sleep = sleep  # threads whose runs from here are all covered: what they would do
        self.taken: dict[int, Access] = {}  # what each thread run here did first


def _reduced(scenario: Callable[[Schedule], object], max_schedules: int) -> Exploration:
    """Every distinct interleaving, by source-set DPOR with sleep sets."""
    __tracebackhide__ = True
    nodes: list[_Node] = []
    fixed = 0  # nodes[:fixed] are replayed as they are; the run goes on by default after them
    count = distinct = 0
    while True:
        if count >= max_schedules:
            return Exploration(count, None, False, distinct, complete=False)
        steps: list[tuple[int, int]] = []
        handoffs: list[tuple[int, int]] = []
        for node in nodes[:fixed]:
            entry = node.point.decision(node.chosen) if node.point is not None else None
            if entry is not None:
                (steps if entry[0] == "at_steps" else handoffs).append(entry[1])
        schedule = Schedule(steps, at_handoffs=handoffs)
        count += 1
        serial_base = next(_primitives._serial)  # locks are named by their serial from here
        _play(scenario, schedule, count, f"distinct interleaving {distinct + 1}")
        scheduler = schedule._last
        if scheduler is None:
            return Exploration(count, None, True, distinct + 1, complete=True)
        functions = [t.function if t.root else None for t in scheduler.threads]
        run = events(scheduler.log, scheduler.trace, functions, serial_base)
        for index in range(fixed):
            if index >= len(run) or run[index].thread != nodes[index].chosen:
                raise RuntimeError(
                    f"explore_all: the run of {schedule!r} went another way than the same "
                    f"decisions did before (at decision {index + 1}): the scenario must build "
                    "the same objects and make the same calls on every call"
                )
            nodes[index].taken[run[index].thread] = run[index].access
        cut = len(run)
        for index in range(fixed, len(run)):
            event = run[index]
            node = _Node(event.point, event.thread, _sleep_after(nodes[-1], run[index - 1]) if nodes else {})
            nodes.append(node)
            if event.thread in node.sleep:
                # Every run from here through this thread is covered: go on with another, or stop.
                awake = sorted((event.point.enabled if event.point else frozenset()) - node.sleep.keys())
                if awake:
                    node.backtrack.add(awake[0])
                cut = index
                break
            node.backtrack.add(event.thread)
            node.done.add(event.thread)
            node.taken[event.thread] = event.access
        if cut == len(run):
            distinct += 1
        _add_reversals(run[:cut], nodes)
        for index in range(len(nodes) - 1, -1, -1):
            node = nodes[index]
            if node.point is None:
                continue
            todo = sorted((node.backtrack & node.point.enabled) - node.done - node.sleep.keys())
            if todo:
                node.done.add(todo[0])
                node.chosen = todo[0]
                del nodes[index + 1 :]
                fixed = index + 1
                break
        else:
            return Exploration(count, None, True, distinct, complete=True)


def _sleep_after(node: _Node, event: Event) -> dict[int, Access]:
    """The sleep set after ``event`` ran at ``node``: sleepers and earlier choices it commutes with."""
    sleep: dict[int, Access] = {}
    for thread, access in node.sleep.items():
        if thread != event.thread and not access.conflicts(event.access):
            sleep[thread] = access
    for thread in node.done:
        if thread != event.thread and thread in node.taken:
            access = node.taken[thread]
            if not access.conflicts(event.access):
                sleep[thread] = access
    return sleep


def _add_reversals(run: list[Event], nodes: list[_Node]) -> None:
    """For each race of the run, make sure one way of reversing it will be tried (source sets)."""
    before = [0] * len(run)  # bit i of before[j]: event i happens before event j
    last: dict[int, int] = {}
    touching: list[int] = []  # events that touch shared state
    for j, event in enumerate(run):
        past = 0
        previous = last.get(event.thread)
        if previous is not None:
            past = before[previous] | (1 << previous)
        if event.access:
            for i in reversed(touching):
                if past >> i & 1 or run[i].thread == event.thread:
                    continue
                if run[i].access.conflicts(event.access):
                    _reverse(run, nodes, before, i, j, past)
                    past |= before[i] | (1 << i)
            touching.append(j)
        before[j] = past
        last[event.thread] = j


def _reverse(run: list[Event], nodes: list[_Node], before: list[int], i: int, j: int, past_j: int) -> None:
    node = nodes[i]
    if node.point is None:
        return
    enabled = node.point.enabled
    initials: set[int] = set()
    between = 0  # the events after i that do not happen after it
    for k in range(i + 1, j):
        if before[k] >> i & 1:
            continue
        if not before[k] & between:
            initials.add(run[k].thread)
        between |= 1 << k
    if not past_j & between:
        initials.add(run[j].thread)
    if initials & (node.backtrack | node.sleep.keys()):
        return
    candidates = sorted(initials & enabled)
    if candidates:
        node.backtrack.add(candidates[0])
    else:
        node.backtrack |= enabled


class _Prefix(NamedTuple):
    """The decisions of a schedule explore_all will try, and where the last one was met."""

    at_steps: tuple[tuple[int, int], ...]
    at_handoffs: tuple[tuple[int, int], ...]
    last: int  # its position in the run's opportunities (-1: none yet)

