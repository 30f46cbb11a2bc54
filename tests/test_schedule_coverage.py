"""Coverage of ``schedules()``: a repeated interleaving does not count as an example.

Many drawn schedules play an interleaving already run (a preemption past the
end of a short run changes nothing); under pytest such a passing example is
rejected, so that ``max_examples`` are that many different interleavings
wherever that many exist (``pytest_concurrency/scheduler/_novelty.py``).
"""

from __future__ import annotations

import re

import pytest

from pytest_concurrency.scheduler._novelty import REJECTS_PER_NEW, Novelty

pytest_plugins = ["pytester"]

# Three threads of three locked increments: thousands of interleavings.
MANY = """
    import threading
    from hypothesis import given, settings
    from pytest_concurrency import schedules
    from pytest_concurrency.scheduler.schedule import _interleaving

    SEEN, RUNS = set(), []

    class Counter:
        def __init__(self):
            self.n = 0
            self.lock = threading.Lock()

        def three(self):
            for _ in range(3):
                with self.lock:
                    self.n += 1

    @settings(derandomize=True, database=None, max_examples={examples})
    @given(schedules())
    def test_counter(schedule):
        counter = Counter()
        callables = [counter.three] * 3
        schedule.run(*callables)
        RUNS.append(1)
        SEEN.add(_interleaving(schedule._last, callables))
        assert counter.n == 9

    def test_tally():
        print(f"TALLY new={{len(SEEN)}} runs={{len(RUNS)}}")
"""

# Two threads that touch nothing shared: a handful of interleavings in all.
FEW = """
    from hypothesis import given, settings
    from pytest_concurrency import schedules

    RUNS = []

    @settings(derandomize=True, database=None, max_examples=100)
    @given(schedules())
    def test_few(schedule):
        RUNS.append(1)
        assert schedule.run(lambda: 1, lambda: 2) == [1, 2]

    def test_tally():
        print(f"TALLY runs={len(RUNS)}")
"""


def tally(result: pytest.RunResult) -> dict[str, int]:
    match = re.search(r"TALLY (.*)", result.stdout.str())
    assert match, result.stdout.str()
    return {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}


def test_max_examples_are_that_many_different_interleavings(pytester: pytest.Pytester):
    pytester.makepyfile(test_many=MANY.format(examples=200))
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=2)
    counts = tally(result)
    # When every run counts, 122 of 200 are new (docs/race-tests.md).
    assert counts["new"] >= 190, counts
    assert counts["runs"] > 200, counts


def test_a_scenario_with_few_interleavings_stops_rejecting_and_passes(pytester: pytest.Pytester):
    pytester.makepyfile(test_few=FEW)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    # No health check about filtering: the rejects are bounded by the new interleavings.
    result.assert_outcomes(passed=2)
    assert "filter" not in result.stdout.str()
    assert tally(result)["runs"] <= 100 + REJECTS_PER_NEW * 20, result.stdout.str()


def test_the_statistics_say_why_examples_were_not_counted(pytester: pytest.Pytester):
    pytester.makepyfile(test_many=MANY.format(examples=30))
    result = pytester.runpytest("-p", "no:cacheprovider", "--hypothesis-show-statistics")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*an interleaving already run: not counted as an example*"])


def test_novelty_counts_each_sequence_of_runs_once_and_rejects_within_its_budget():
    novelty = Novelty(rejects_per_new=2)
    assert not novelty.should_reject([])  # ran no schedule: not ours to judge
    assert not novelty.should_reject(["a"])
    assert novelty.should_reject(["a"])
    assert novelty.should_reject(["a"])
    assert not novelty.should_reject(["a"])  # budget spent: 2 per new one
    assert not novelty.should_reject(["a", "b"])  # a new sequence of runs
    assert novelty.should_reject(["a"])
    assert (novelty.new, novelty.rejected) == (2, 3)


def test_a_scenario_of_other_calls_under_the_same_interleaving_is_new():
    from pytest_concurrency import Schedule
    from pytest_concurrency.linearizability import Operation, Scenario
    from pytest_concurrency.linearizability.scenario import Step
    from pytest_concurrency.scheduler._novelty import count_new_interleavings_only

    write = Operation("write", lambda box, x: box.append(x))

    def register(state: int, name: str, *args: int) -> tuple[None, int]:
        return None, args[0]

    def lanes(*values: int) -> Scenario:
        return Scenario(setup=(), threads=tuple((Step(write, (v,)),) for v in values), after=())

    novelty = Novelty()
    check = count_new_interleavings_only(
        lambda scenario: scenario.check(Schedule(), list, register, 0), novelty
    )
    check(lanes(1, 2))
    check(lanes(3, 4))  # the same switches, other calls: new
    assert novelty.new == 2
    with pytest.raises(BaseException):  # noqa: B017, PT011 - outside Hypothesis, reject() is an error
        check(lanes(1, 2))  # the very same again: not counted
    assert (novelty.new, novelty.rejected) == (2, 1)
