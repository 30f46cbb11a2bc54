"""Benchmark of explore_all's partial-order reduction (not a test: it prints a table).

    python benchmarks/bench_explore.py             # every program of tests/explore_programs.py
    python benchmarks/bench_explore.py dining abba # some of them

For each program: the schedules and seconds of the unreduced enumeration
(every schedule with at most 2 preemptions, every hand-off choice:
``explore_all(max_preemptions=2)``) next to those of the reduced search,
which covers every distinct interleaving with no bound
(``explore_all(max_preemptions=None)``): its schedules, and in brackets how
many of them were new interleavings (the others were cut short where the
sleep sets showed every way on was covered, and the search went on another
way); and whether both found the same outcomes.  Then how many schedules the reduced search runs before it finds
a bug that needs 4 preemptions.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from explore_programs import PROGRAMS, Program, four_preemptions, outcome_of  # noqa: E402

from pytest_concurrency import Exploration, Schedule, explore_all  # noqa: E402


def _measure(program: Program, max_preemptions: int | None) -> tuple[Exploration, float, set[Any]]:
    seen: set[Any] = set()
    start = time.perf_counter()
    result = explore_all(
        lambda schedule: seen.add(outcome_of(program, schedule)),
        max_preemptions=max_preemptions,
        max_schedules=100_000,
    )
    return result, time.perf_counter() - start, seen


def main(names: list[str]) -> None:
    print(f"Python {sys.version.split()[0]}")
    header = f"{'program':<26}{'unreduced (<=2 preemptions)':>30}{'reduced: all (distinct)':>30}{'same outcomes':>15}"
    print(header)
    print("-" * len(header))
    for name in names or sorted(PROGRAMS):
        program = PROGRAMS[name]
        brute, brute_seconds, brute_seen = _measure(program, 2)
        reduced, reduced_seconds, reduced_seen = _measure(program, None)
        same = "yes" if brute_seen == reduced_seen else f"NO: {reduced_seen ^ brute_seen}"
        if not reduced.complete:
            same += " (reduced search cut)"
        print(
            f"{name:<26}{f'{brute.schedules:,} in {brute_seconds:.2f} s':>30}"
            f"{f'{reduced.schedules:,} ({reduced.distinct:,}) in {reduced_seconds:.2f} s':>30}{same:>15}"
        )
    if not names:
        count = [0]

        def scenario(schedule: Schedule) -> None:
            count[0] += 1
            assert four_preemptions(schedule) != "ababab"

        start = time.perf_counter()
        try:
            explore_all(scenario, max_preemptions=None)
        except AssertionError:
            print(
                f"\nfour_preemptions (a bug that needs 4 preemptions): found at schedule "
                f"{count[0]:,} in {time.perf_counter() - start:.2f} s"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
