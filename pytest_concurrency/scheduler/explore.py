"""``explore_all()``: every schedule of a small scenario, fewest preemptions first."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from ..errors import DeadlockError, LivelockError
from . import _patching
from ._report import format_story
from ._state import add_note
from .schedule import Schedule

__all__ = ["Exploration", "explore_all"]


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
    __tracebackhide__ = True  # a failure is the scenario's: pytest shows it, not this loop
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
        if installed_here and not _patching.installed_for_test():
            _patching.uninstall()
    return Exploration(count, max_preemptions, exhausted)


class _Prefix(NamedTuple):
    """The decisions of a schedule explore_all will try, and where the last one was met."""

    at_steps: tuple[tuple[int, int], ...]
    at_handoffs: tuple[tuple[int, int], ...]
    last: int  # its position in the run's opportunities (-1: none yet)

