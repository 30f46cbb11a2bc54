"""``schedules()``: a Hypothesis strategy of controlled schedules.

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

import weakref
from typing import TYPE_CHECKING, Any

from . import _engine, _patching
from .schedule import Schedule

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["schedules", "uses_schedules"]

_our_strategies: weakref.WeakSet[Any] = weakref.WeakSet()


def schedules(
    *, max_preemptions: int = 4, max_steps: int = _engine.DEFAULT_MAX_STEPS
) -> SearchStrategy[Schedule]:
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
    encoded = st.binary(max_size=3 * (max_preemptions + _MAX_CHOICES))

    def decode(data: bytes) -> Schedule:
        _patching.install_for_test()
        pairs: dict[str, list[tuple[int, int]]] = {kind: [] for kind in _KINDS}
        preemptions = choices = 0
        walk = priorities = None
        windows: dict[str, tuple[tuple[int, ...], int, int]] = {}
        for code in _codes(data):
            kind, distance, chosen = _decode(code)
            if kind == "windows":
                if not windows and max_preemptions:
                    mask = distance + 1  # which threads: bits of a number from 1
                    threads = tuple(i for i in range(mask.bit_length()) if mask >> i & 1)
                    # One window per thread listed: a smaller code lists fewer threads,
                    # so the shrinker leaves the fewest preemptions that still fail.
                    drawn = (threads, chosen // 2 + 1, min(len(threads), max_preemptions))
                    windows["windows"] = drawn
                    if chosen % 2:
                        windows["lock_windows"] = drawn
                continue
            if kind == "walk":
                if walk is None and max_preemptions:
                    walk = (distance, _PERIODS[chosen % len(_PERIODS)], max_preemptions)
                continue
            if kind == "priorities":
                if priorities is None and max_preemptions:
                    # PCT of depth 2 or 3: one or two change points (capped by max_preemptions).
                    changes = min(chosen // len(_HORIZONS) + 1, max_preemptions)
                    priorities = (distance, _HORIZONS[chosen % len(_HORIZONS)], changes)
                continue
            if kind in _CHOICES:
                if choices == _MAX_CHOICES:
                    continue
                choices += 1
                # Counted from 1; choice 0 is what happens anyway.
                pairs[kind].append((distance + 1, chosen + 1))
                continue
            if preemptions == max_preemptions:
                continue
            preemptions += 1
            # Absolute positions: deleting one preemption while shrinking
            # leaves the others where they were.
            if kind in ("after_switch", "at_steps"):  # step 0 decides who starts
                pairs[kind].append((distance, chosen))
            else:
                pairs[kind].append((distance + 1, chosen))  # counted from 1
        del pairs["walk"], pairs["windows"], pairs["priorities"]
        return Schedule._trusted(max_steps=max_steps, walk=walk, priorities=priorities, **windows, **pairs)

    strategy = encoded.map(decode)
    _our_strategies.add(strategy)
    return strategy


# Where to preempt.  The run's length is unknown before it ends, so a
# distance is drawn uniformly below one of several bounds (short, medium and
# long runs alike get their share); and distances are counted in five ways
# (see Schedule), each making a different kind of bug likely: a few steps
# after a thread starts running, at a global step, at a synchronisation
# point, at a read or write of shared state, or at one made holding no lock
# (a long run has few of those: a window deep in it is as easy to hit as an
# early one).  Two kinds place several preemptions at once: a random walk,
# and windows (which threads are preempted between two accesses to one name,
# and with lock windows also between two critical sections: a bug that needs
# two preemptions in two threads, or a lock-order deadlock among four, is one
# draw, not two to four exact positions); and a priority schedule (PCT over visible
# operations, its change points within a drawn horizon).  Two more kinds are not preemptions: who goes on at a
# hand-off, and whom a notify() wakes.  One code encodes choice, kind, bound
# and distance.
_KINDS = (
    "after_switch", "at_unlocked", "at_syncs", "at_steps", "at_visible", "walk", "windows",
    "at_handoffs", "at_notifies", "priorities",
)  # fmt: skip
# One-byte codes, the likeliest draws: (kind, distance) for each pair of codes,
# the last bit being the choice.  Windows get the largest share, four entries
# for each of the seven sets of threads among three (a window's distance is the
# number from 1 whose bits list the threads), opening at each one's first
# window; their choice bit adds lock windows to the data windows.  Then the
# positions of the kinds that find most bugs with a small distance (measured
# over the corpus, see docs/race-tests.md).  A walk takes two bytes or more:
# whatever it finds, the shrinker can turn into one-byte codes, which say
# where the preemptions are.  The first entry makes code 0 the first thread's
# first window (see _decode).
_SMALL: tuple[tuple[str, int], ...] = (
    *(("windows", d) for d in (0, 4, 2, 6, 1, 5, 3)),
    *(("at_unlocked", d) for d in range(8)),
    *(("at_visible", d) for d in range(8)),
    *(("windows", d) for d in (4, 2, 0, 6, 1, 5, 3)),
    *(("at_syncs", d) for d in range(4)),
    *(("after_switch", d) for d in range(4)),
    *(("at_steps", d) for d in range(4)),
    *(("windows", d) for d in (4, 2, 6, 0, 1, 5, 3)),
    *(("at_handoffs", d) for d in range(3)),
    *(("at_notifies", d) for d in range(3)),
    *(("windows", d) for d in (4, 2, 6, 0, 1, 5, 3)),
    ("windows", 0), ("windows", 4),
)
_CHOICES = ("at_handoffs", "at_notifies")
_MAX_CHOICES = 2  # hand-offs and notifies chosen, beside max_preemptions
_BOUNDS = {
    "after_switch": (8, 32, 128),
    "at_unlocked": (4, 16, 64),
    "at_syncs": (8, 32),
    "at_steps": (16, 64, 256, 1024, 8192),
    "at_visible": (8, 32, 128, 512),
    "at_handoffs": (4, 16),
    "at_notifies": (4, 16),
    "walk": (16, 256, 4096),  # the seed
    "windows": (8, 16),  # which threads, a bit each (the number from 1)
    "priorities": (16, 256, 4096),  # the seed
}
_HORIZONS = (8, 16, 32, 64)  # a priority schedule's change points fall in this many visible operations
_PERIODS = (3, 6, 2, 4, 8, 12, 16, 32)  # a walk's odds of a preemption: 1 in ...


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
    three-byte ones every distance of ``_BOUNDS``.  Code 0 is the first
    thread's first window: the byte shrinker tries all zeros first, and a
    zero for each byte, so a failure that one window explains (the lost
    update, the commonest race) shrinks to that one preemption rather than
    stopping at two that only work together.  A window's choice is its
    first window (from 1, halved) and whether lock windows come too (odd).

    >>> _decode(0)
    ('windows', 0, 0)
    >>> _decode(3)
    ('windows', 4, 1)
    >>> _decode(2 * 7 + 1)
    ('at_unlocked', 0, 1)
    """
    if code < 128:
        index, choice = divmod(code, 2)
        kind, distance = _SMALL[index]
        return kind, distance, choice
    code, choice = divmod(code - 128 if code < _FAR else code - _FAR, 8)
    code, kind_index = divmod(code, len(_KINDS))
    kind = _KINDS[kind_index]
    bounds = _BOUNDS[kind]
    code, bound_index = divmod(code, len(bounds))
    return kind, code % bounds[bound_index], choice


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
