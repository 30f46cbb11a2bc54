"""The bug corpus through schedules(): every bug is found, no fixed twin fails.

Each entry of tests/scheduler_corpus is a classic thread bug and its fixed
twin (see that package's docstring).  Hypothesis runs derandomized here, so
each of these tests explores the same schedules on every run: a bug found
once is found every time, and a twin that passes once passes every time.
``benchmarks/bench_scheduler.py`` measures the same corpus with random seeds.
"""

from __future__ import annotations

import pytest
import scheduler_corpus
from hypothesis import Phase, given, settings

from pytest_concurrency import schedules


def explore(scenario, max_examples: int) -> tuple[int, BaseException | None]:
    """(examples run, the failure) for scenario under derandomized schedules."""
    examples = 0

    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.generate],
    )
    @given(schedules())
    def search(schedule):
        nonlocal examples
        examples += 1
        scenario(schedule)

    try:
        search()
    except Exception as error:  # the bug showing: AssertionError, DeadlockError, ...
        return examples, error
    return examples, None


@pytest.mark.parametrize("name", scheduler_corpus.NAMES)
def test_the_bug_is_found_within_200_schedules(name):
    module = scheduler_corpus.load(name)
    examples, failure = explore(module.buggy, 200)
    assert failure is not None, f"{name}: {module.__doc__.splitlines()[0]} not found in 200 schedules"


@pytest.mark.parametrize("name", scheduler_corpus.NAMES)
def test_the_fixed_twin_passes_every_schedule(name):
    module = scheduler_corpus.load(name)
    examples, failure = explore(module.fixed, 100)
    assert failure is None, f"{name}: the fixed version failed after {examples} schedules: {failure!r}"
    assert examples == 100


def test_the_corpus_has_at_least_twelve_bugs():
    assert len(scheduler_corpus.NAMES) >= 12
