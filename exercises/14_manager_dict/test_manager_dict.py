"""Graded tests of exercise 14: a word count in a ``Manager().dict()`` shared by processes.

Lost updates are made likely, not left to luck: four processes count the
same three words over and over, so that without a lock their
``counts[w] = counts.get(w, 0) + 1`` (two requests to the manager) overlap on
every run.  The lock discipline itself is checked too, on every run
(``GuardedManagers``): each write to the manager's dict must hold the one lock
all processes share.  The tests run under both start methods (``fork``, and
``spawn`` as on macOS and Windows).
"""

from __future__ import annotations

from collections import Counter
from multiprocessing.process import BaseProcess

import pytest

from pytest_concurrency import load_impl
from pytest_concurrency.testing import (  # noqa: F401  (fixtures)
    GuardedManagers,
    children,
    start_method,
    within,
)

manager_dict = load_impl("manager_dict")

# Generous: a correct implementation needs a second or two, but the machine
# may be busy.  Only a broken implementation ever waits this long.
PATIENCE = 60.0

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns when forking while threads run; the tests' watchdog is a thread.
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)




@pytest.fixture
def started_processes(monkeypatch) -> list[BaseProcess]:
    """Every process started during the test (a spy: the processes really start)."""
    started: list[BaseProcess] = []
    real_start = BaseProcess.start

    def start(process: BaseProcess) -> None:
        started.append(process)
        real_start(process)

    monkeypatch.setattr(BaseProcess, "start", start)
    return started


def is_manager(process: BaseProcess) -> bool:
    return "Manager" in process.name  # a manager names its server process SyncManager-N


# Three words, 480 chunks of 10 words: heavy duplication.
CHUNKS = ["apple banana apple\tcherry apple  banana\napple cherry banana apple"] * 480


@pytest.mark.points(5)
@pytest.mark.parametrize("start_method", ["fork", "spawn"], indirect=True)
def test_word_count_is_exact_under_heavy_duplication(start_method, children):
    """Measured: without a lock around get-then-set (no_lock), or with one lock per
    process (lock_per_process), this test failed 30 runs in a row out of 30, under fork
    and under spawn alike (tests/broken/14_manager_dict; 2 cores, load average 10)."""
    counts = within(PATIENCE, manager_dict.word_count, CHUNKS, 4)
    expected = dict(Counter(word for chunk in CHUNKS for word in chunk.split()))
    assert dict(counts) == expected, (
        f"counted {dict(counts)}, expected {expected}: "
        f"{sum(expected.values()) - sum(dict(counts).values())} words were lost. "
        "`d[w] = d.get(w, 0) + 1` on a manager dict is two requests: hold a manager lock around both"
    )
    children.assert_none_left("after word_count returned (join the workers, shut the manager down)")


@pytest.mark.points(2)
def test_word_count_returns_a_plain_dict_and_shuts_the_manager_down(children):
    counts = within(PATIENCE, manager_dict.word_count, ["to be or not to be"], 2)
    assert type(counts) is dict, (
        f"word_count returned a {type(counts).__name__}: return a plain dict (dict(proxy)), "
        "the manager's proxy stops working once the manager is shut down"
    )
    assert counts == {"to": 2, "be": 2, "or": 1, "not": 1}
    children.assert_none_left("after word_count returned (shut the manager down: `with Manager() as m:`)")


@pytest.mark.points(2)
def test_word_count_uses_n_processes_and_one_manager(started_processes, children):
    counts = within(PATIENCE, manager_dict.word_count, ["a b c"] * 30, 3)
    assert counts == {"a": 30, "b": 30, "c": 30}
    managers = [p for p in started_processes if is_manager(p)]
    workers = [p for p in started_processes if not is_manager(p)]
    assert len(managers) == 1, f"expected one Manager, {len(managers)} were started"
    assert len(workers) == 3, f"word_count(chunks, 3) started {len(workers)} counting processes, not 3"
    children.assert_none_left("after word_count returned (join the workers, shut the manager down)")


@pytest.mark.points(1)
def test_word_count_of_nothing_is_empty(children):
    assert within(PATIENCE, manager_dict.word_count, [], 2) == {}
    assert within(PATIENCE, manager_dict.word_count, ["", "  \n"], 2) == {}
    children.assert_none_left("after word_count returned")


@pytest.mark.points(3)
@pytest.mark.hint(2)
@pytest.mark.parametrize("start_method", ["fork", "spawn"], indirect=True)
def test_every_update_holds_the_lock_all_processes_share(start_method, children):
    """The lock discipline itself, not its luck: while word_count runs, the Manager's dict
    records in each worker every write made without a lock all processes share (no lock,
    or a lock each process made for itself) and every write whose read came under an
    earlier hold of the lock.  A mistake there fails on every run, even one where no
    update happened to be lost."""
    chunks = CHUNKS[:40]  # every worker gets all three words: enough to compare their locks
    with GuardedManagers() as guard:
        counts = within(PATIENCE, manager_dict.word_count, chunks, 4)
    problems = guard.problems()
    assert not problems, f"word_count: {problems}"
    expected = dict(Counter(word for chunk in chunks for word in chunk.split()))
    assert dict(counts) == expected, f"counted {dict(counts)}, expected {expected}"
    children.assert_none_left("after word_count returned (join the workers, shut the manager down)")
