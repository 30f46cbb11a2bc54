"""Graded tests of exercise 13: processes writing into one shared ``multiprocessing.Array``.

Lost updates are made likely, not left to luck: four processes add to a
handful of cells hundreds of thousands of times, so that without the
array's lock read-modify-writes from different processes overlap on every
run.  The tests run under both start methods (``fork``, and ``spawn`` as on
macOS and Windows).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
from collections import Counter
from multiprocessing.process import BaseProcess

import pytest

from pytest_concurrency import load_impl
from pytest_concurrency.testing import (  # noqa: F401  (fixtures)
    GuardedArray,
    children,
    start_method,
    within,
)

shared_array = load_impl("shared_array")

# Generous: a correct implementation needs a fraction of a second, but the
# machine may be busy.  Only a broken implementation ever waits this long.
PATIENCE = 30.0

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


# --- fill ----------------------------------------------------------------------------------


@pytest.mark.points(3)
def test_fill_sets_every_cell_to_its_index_plus_100(start_method, children):
    arr = multiprocessing.Array("i", 1000)
    within(PATIENCE, shared_array.fill, arr, 4)
    wrong = [(i, arr[i]) for i in range(len(arr)) if arr[i] != i + 100]
    assert not wrong, (
        f"{len(wrong)} of 1000 cells are not index + 100, e.g. (index, value) {wrong[:5]}"
    )
    children.assert_none_left("after fill returned (join every process)")


@pytest.mark.points(2)
def test_fill_splits_the_work_across_n_processes(started_processes, children):
    arr = multiprocessing.Array("i", 90)
    within(PATIENCE, shared_array.fill, arr, 3)
    assert len(started_processes) == 3, (
        f"fill(arr, 3) started {len(started_processes)} processes, not 3"
    )
    assert arr[:] == [i + 100 for i in range(90)], "fill left cells unset"
    children.assert_none_left("after fill returned (join every process)")


@pytest.mark.points(1)
def test_fill_works_with_one_process_and_with_more_processes_than_cells(children):
    one = multiprocessing.Array("i", 7)
    within(PATIENCE, shared_array.fill, one, 1)
    assert one[:] == [i + 100 for i in range(7)]
    small = multiprocessing.Array("i", 3)
    within(PATIENCE, shared_array.fill, small, 5)
    assert small[:] == [100, 101, 102], f"fill(Array of 3, 5 processes) gave {small[:]}"
    children.assert_none_left("after fill returned (join every process)")


# --- count_into -----------------------------------------------------------------------------

CELLS = 4
# Copies of each value: heavy duplication, so that unlocked `arr[v] += 1` from
# four processes lose updates on every run.  Spawned children get less data
# (it is pickled to each of them, which is slow): measured, they still
# overlap and lose updates on every run.
COPIES = {"fork": 50_000, "spawn": 5_000}


def expected_counts(data: list[int], cells: int, start: int = 0) -> list[int]:
    counts = Counter(data)
    return [start + counts[v] for v in range(cells)]


@pytest.mark.points(5)
def test_count_into_counts_exactly_under_heavy_duplication(start_method, children):
    """Measured: without the array's lock (no_lock), or with it taken separately for the
    read and the write (lock_read_and_write_apart), this test failed 30 runs in a row out
    of 30, under fork and under spawn alike (tests/broken/13_shared_array; 2 cores, load
    average 9-10 from other work)."""
    data = list(range(CELLS)) * COPIES[start_method]
    arr = multiprocessing.Array("i", CELLS)
    within(PATIENCE, shared_array.count_into, arr, data, 4)
    expected = expected_counts(data, CELLS)
    lost = sum(expected) - sum(arr[:])
    assert arr[:] == expected, (
        f"counts {arr[:]}, expected {expected}: {lost} updates were lost. `arr[v] += 1` reads, "
        "then writes: hold arr.get_lock() around both"
    )
    children.assert_none_left("after count_into returned (join every process)")


@pytest.mark.points(2)
def test_count_into_adds_to_what_the_array_holds(children):
    arr = multiprocessing.Array("i", [5, 5, 5, 5, 5])
    data = [0, 1, 1, 4, 4, 4] * 10
    within(PATIENCE, shared_array.count_into, arr, data, 2)
    assert arr[:] == expected_counts(data, 5, start=5), (
        f"count_into must add to the counts already there: got {arr[:]}"
    )
    children.assert_none_left("after count_into returned (join every process)")


@pytest.mark.points(2)
def test_count_into_splits_the_data_across_n_processes(started_processes, children):
    data = [0, 1, 2] * 100
    arr = multiprocessing.Array("i", 3)
    within(PATIENCE, shared_array.count_into, arr, data, 3)
    assert len(started_processes) == 3, (
        f"count_into(arr, data, 3) started {len(started_processes)} processes, not 3"
    )
    assert arr[:] == [100, 100, 100], f"counts {arr[:]}, expected [100, 100, 100]"
    children.assert_none_left("after count_into returned (join every process)")


@pytest.mark.points(3)
def test_count_into_updates_each_cell_under_the_shared_lock(start_method, children):
    """The lock discipline itself, not its luck: the children get a view of the array that
    records every write made without holding arr.get_lock() (no lock, or a lock of their
    own), and every write whose read came under an earlier acquisition.  A mistake there
    fails on every run, even one where no update happened to be lost."""
    data = list(range(CELLS)) * 50
    arr = GuardedArray(multiprocessing.Array("i", CELLS))
    within(PATIENCE, shared_array.count_into, arr, data, 4)
    problems = arr.problems()
    assert not problems, f"count_into: {problems}"
    assert arr[:] == expected_counts(data, CELLS), (
        f"counts {arr[:]}, expected {expected_counts(data, CELLS)}"
    )
    children.assert_none_left("after count_into returned (join every process)")
