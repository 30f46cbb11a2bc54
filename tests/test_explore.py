"""explore_all(max_preemptions=None): the reduction finds every outcome brute force finds, in fewer runs.

Brute force is the unreduced enumeration (every schedule with at most two
preemptions, every hand-off choice), which reaches every outcome of these
programs; for the two smallest, the enumeration with no bound at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from explore_programs import PROGRAMS, Program, four_preemptions, outcome_of

from pytest_concurrency import Exploration, Schedule, explore_all
from pytest_concurrency.scheduler import _patching
from pytest_concurrency.scheduler.explore import _bounded


def _outcomes(program: Program, max_preemptions: int | None) -> tuple[set[Any], Exploration]:
    seen: set[Any] = set()
    result = explore_all(
        lambda schedule: seen.add(outcome_of(program, schedule)),
        max_preemptions=max_preemptions,
        max_schedules=60_000,
    )
    return seen, result


# Schedules the reduced search may run at most (measured, with room): the
# numbers are the point of the reduction, so a regression shows here.
MOST = {
    "lost_update": 8, "lost_update_three": 80, "locked_counter": 10, "check_then_act": 15,
    "lock_too_narrow": 150, "abba": 20, "dining": 3_000, "dining_ordered": 1_200,
    "condition_handoff": 25, "lost_wakeup": 80, "semaphore_guard": 15,
    "semaphore_released_twice": 10, "queue_order": 200, "event_gate": 600, "independent": 1,
    "independent_objects": 80, "list_appends": 72, "global_race": 12, "cell_race": 8,
    "subscript_race": 8, "observer_sees_decrease": 2_500, "spawn_and_join": 160,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_reduced_search_finds_what_brute_force_finds(name: str) -> None:
    program = PROGRAMS[name]
    reduced, exploration = _outcomes(program, None)
    brute, enumeration = _outcomes(program, 2)
    assert enumeration.exhausted
    assert exploration.complete and exploration.exhausted, exploration
    assert reduced == brute, f"{name}: reduced {sorted(map(repr, reduced))}, brute {sorted(map(repr, brute))}"
    assert exploration.schedules <= MOST[name], exploration
    if name in ("observer_sees_decrease", "spawn_and_join"):  # unbounded: still fewer
        assert exploration.schedules < enumeration.schedules, (exploration, enumeration)
    else:
        assert exploration.schedules * 2 <= enumeration.schedules, (exploration, enumeration)
    assert exploration.distinct <= exploration.schedules


@pytest.mark.parametrize("name", ["global_race", "cell_race"])
def test_the_reduced_search_finds_what_the_unbounded_enumeration_finds(name: str) -> None:
    program = PROGRAMS[name]
    reduced, exploration = _outcomes(program, None)
    brute: set[Any] = set()
    installed_here = _patching.ensure_installed()
    try:
        enumeration = _bounded(lambda schedule: brute.add(outcome_of(program, schedule)), 10_000, 60_000)
    finally:
        if installed_here:
            _patching.uninstall()
    assert enumeration.complete and exploration.complete
    assert reduced == brute
    assert exploration.schedules * 100 < enumeration.schedules


def test_independent_threads_collapse_to_one_interleaving() -> None:
    result = explore_all(lambda schedule: PROGRAMS["independent"](schedule), max_preemptions=None)
    assert (result.schedules, result.distinct, result.complete) == (1, 1, True)


def test_a_bug_that_needs_four_preemptions_is_found_and_replays() -> None:
    seen: set[Any] = set()
    bounded = explore_all(lambda s: seen.add(four_preemptions(s)), max_preemptions=3, max_schedules=3_000)
    assert "ababab" not in seen and not bounded.complete

    def scenario(schedule: Schedule) -> None:
        assert four_preemptions(schedule) != "ababab", "the threads alternated"

    with pytest.raises(AssertionError, match="alternated") as caught:
        explore_all(scenario, max_preemptions=None)
    note = caught.value.__notes__[0]
    assert "distinct interleaving" in note
    failing = eval(note[note.index("Schedule(") : note.rindex(")", 0, note.index(", distinct")) + 1])  # noqa: S307
    assert failing.preemptions == 4
    assert four_preemptions(failing) == "ababab"


def test_the_search_is_the_same_every_time() -> None:
    first = _outcomes(PROGRAMS["lock_too_narrow"], None)[1]
    second = _outcomes(PROGRAMS["lock_too_narrow"], None)[1]
    assert (first.schedules, first.distinct) == (second.schedules, second.distinct)


def test_complete_is_false_when_max_schedules_cuts_the_search() -> None:
    result = explore_all(lambda s: outcome_of(PROGRAMS["dining"], s), max_preemptions=None, max_schedules=5)
    assert (result.schedules, result.complete, result.exhausted) == (5, False, False)
    assert "NOT complete" in str(result) and "max_schedules" in str(result)
    assert "distinct=" in repr(result) and "complete=False" in repr(result)


def test_the_summary_says_what_was_covered() -> None:
    done = explore_all(lambda s: outcome_of(PROGRAMS["lost_update"], s), max_preemptions=None)
    assert str(done) == f"explored all {done.distinct} distinct interleavings ({done.schedules} schedules): the search is complete"
    assert done.max_preemptions is None
    bounded = explore_all(lambda s: outcome_of(PROGRAMS["lost_update"], s), max_preemptions=1)
    assert bounded.exhausted and not bounded.complete
    assert "not every interleaving" in str(bounded)


def test_a_bound_that_leaves_nothing_out_is_complete() -> None:
    def scenario(schedule: Schedule) -> None:
        schedule.run(lambda: None)

    result = explore_all(scenario, max_preemptions=0)
    assert result.exhausted and result.complete


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"max_preemptions": -1}, ValueError, r"max_preemptions=\.\.\.\) must be an integer >= 0 or None"),
        ({"max_preemptions": "all"}, ValueError, "max_preemptions.*'all'"),
        ({"max_preemptions": True}, ValueError, "max_preemptions.*True"),
        ({"max_schedules": 0}, ValueError, r"max_schedules=\.\.\.\) must be an integer >= 1, got 0"),
        ({"max_schedules": 2.5}, ValueError, "max_schedules.*2.5"),
    ],
)
def test_bad_arguments_name_the_problem(arguments: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        explore_all(lambda s: None, **arguments)


def test_a_scenario_that_does_not_replay_is_named() -> None:
    calls = [0]

    def scenario(schedule: Schedule) -> None:
        calls[0] += 1
        if calls[0] == 1:
            PROGRAMS["lost_update"](schedule)
        else:  # one thread on later calls: the decisions no longer fit
            schedule.run(lambda: None)

    with pytest.raises(RuntimeError, match="must build the same objects"):
        explore_all(scenario, max_preemptions=None)
