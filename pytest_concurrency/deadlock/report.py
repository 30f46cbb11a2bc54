"""The reports of real runs: a wait-for cycle, stuck threads, a timeout's snapshot, inversions.

Each one names locks, threads and lines through :mod:`pytest_concurrency._frames`,
as the controlled scheduler's reports do::

    deadlock: 2 threads wait for each other in a cycle (thread 'worker-1' -> ...)

      thread 'worker-1' holds `self.a` (Lock made at bank.py:5)
          taken at bank.py:11 in forward: with self.a:
        waits for `self.b` (Lock made at bank.py:6) in Lock.acquire(), held by thread 'worker-2'
          at bank.py:13 in forward: with self.b:
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

from .._frames import (
    cycle_text,
    describe_thread,
    explain_stuck,
    format_stack,
    renumber,
    thread_label,
    user_site,
)
from . import _waitgraph as wg


def _thread_names() -> dict[int | None, str]:
    return {t.ident: t.name for t in threading.enumerate()}


def _describe_thread(ident: int, wait: wg.Wait | None, names: dict, frames: dict) -> str:
    name = names.get(ident, f"thread {ident}")
    frame = frames.get(ident)
    held = wg.held_by_thread().get(ident, [])
    # Named as this thread's code calls them, next to its lines.
    wg.name_locks([h.lock for h in held] + ([wait.target] if wait is not None else []), [frame])
    holds = [(h.lock.describe(), wg.format_site(h.site)) for h in held]
    if wait is None:
        return "\n".join(describe_thread(name, holds))
    owner = wait.owner()
    owner_name = None
    site = user_site(frame)
    if owner is not None:
        if wait.kind == "join":
            site += f"\n      (and {thread_label(names.get(owner, str(owner)))} does not end)"
        elif wait.kind != "watch":
            owner_name = names.get(owner, str(owner))
    return "\n".join(describe_thread(name, holds, wg.describe_wait(ident, wait, frame), site, owner_name))


def _stacks(idents: list[int], names: dict, frames: dict) -> str:
    parts = ["", "Stacks:"]
    for ident in idents:
        parts.append(f"  {thread_label(names.get(ident, str(ident)))}:")
        parts.append(format_stack(frames.get(ident), "      ").rstrip("\n"))
    return "\n".join(parts)


def cycle_report(cycle: list[int], blocked: dict[int, wg.Wait], timeout: float) -> str:
    names, frames = _thread_names(), sys._current_frames()
    head = (
        f"deadlock: {len(cycle)} thread{'s' if len(cycle) > 1 else ''} wait for each other "
        f"in a cycle ({cycle_text([names.get(i, str(i)) for i in cycle])}), unchanged for "
        f"{timeout:g} s (deadlock_timeout)."
    )
    if len(cycle) == 1:
        head = (
            f"deadlock: {thread_label(names.get(cycle[0], str(cycle[0])))} waits for a lock it holds "
            f"itself, unchanged for {timeout:g} s (deadlock_timeout). Use an RLock, or "
            "do not take the lock again."
        )
    body = [_describe_thread(i, blocked.get(i), names, frames) for i in cycle]
    tail = "\nEach thread of the cycle was unwound with DeadlockError."
    return renumber("\n".join([head, "", *body, _stacks(cycle, names, frames), tail]))


def stuck_report(members: list[int], blocked: dict[int, wg.Wait], timeout: float,
                 idle_pool: list[int] | None = None) -> str:
    names, frames = _thread_names(), sys._current_frames()
    misuse = explain_stuck(frames.get(i) for i in members)
    head = (
        f"deadlock: every thread of the test ({len(members)}) has been blocked for "
        f"{timeout:g} s (deadlock_timeout) and none of them can wake the others: "
        + (" ".join(misuse) if misuse else
           "a lost wakeup (notify or set before the wait, a missing release), or a join "
           "on a thread that waits forever.")
    )
    body = [_describe_thread(i, blocked.get(i), names, frames) for i in members]
    if idle_pool:
        listed = ", ".join(thread_label(names.get(i, str(i))) for i in idle_pool)
        body.append(
            f"  and the threads of a multiprocessing pool that has no task left ({listed}): "
            "every result was delivered, so no callback or result can wake anyone."
        )
    tail = "\nEvery one of these threads was unwound with DeadlockError."
    return renumber("\n".join([head, "", *body, _stacks(members, names, frames), tail]))


def snapshot_report(test_ident: int | None, members: Iterable[int | None], interrupted: Any = None) -> str:
    """What each thread of the test was doing: for the pytest-timeout message.

    ``interrupted``: the test thread's frame that a signal handler interrupted.
    """
    names, frames = _thread_names(), sys._current_frames()
    if interrupted is not None and test_ident is not None:
        frames[test_ident] = interrupted
    idents = sorted(i for i in members if i is not None)
    waits = wg.waits()
    lines = ["pytest-concurrency: the threads of the test when the timeout fired:", ""]
    for ident in idents:
        lines.append(_describe_thread(ident, waits.get(ident), names, frames))
        if ident not in waits:
            lines.append("      is not blocked on a watched primitive (running, sleeping, in I/O, or")
            lines.append("      blocked on a _thread lock or in native code)")
        lines.append(format_stack(frames.get(ident), "      ").rstrip("\n"))
    replaced = wg.replaced_by_someone_else()
    if replaced:
        lines.append("")
        lines.append("The code under test replaced " + ", ".join(replaced) + ": its waits are not watched.")
    return renumber("\n".join(lines))


def inversion_report(inversions: list[tuple[wg.OrderEdge, list[wg.OrderEdge]]]) -> str:
    # The threads are gone: a lock is named as the line that made it names it.
    wg.name_locks((), ())
    parts = [
        "potential deadlock: locks taken in opposite orders (a lock-order inversion). "
        "The test passed this time, but with other timing these threads deadlock. "
        "Take the locks in one fixed order everywhere.",
    ]
    shown: dict[frozenset[tuple[str, str]], int] = {}
    for closing, path in inversions:
        edges = [closing, *path]
        # One block per distinct set of code sites: the same two lines taken in
        # opposite orders over many accounts are one mistake, not one per pair.
        sites = frozenset((wg.format_site(e.first_site), wg.format_site(e.second_site)) for e in edges)
        if sites in shown:
            shown[sites] += 1
            continue
        shown[sites] = 0
        for i, edge in enumerate(edges):
            parts.append("")
            parts.append(f"  {'while ' if i else ''}{thread_label(edge.thread)} took {edge.first.describe()}")
            parts.append(f"      at {wg.format_site(edge.first_site)}")
            parts.append(f"    then {edge.second.describe()}")
            parts.append(f"      at {wg.format_site(edge.second_site)}")
    more = sum(shown.values())
    if more:
        parts.append("")
        parts.append(
            f"  and {more} more pair{'s' if more > 1 else ''} of locks taken at the same lines"
        )
    return renumber("\n".join(parts))
