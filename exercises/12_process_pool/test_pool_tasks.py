"""Graded tests of exercise 12: Pool.map, apply_async with callbacks, terminate.

The tests run under both start methods (``fork``, and ``spawn`` as on macOS
and Windows).  What the tests hand to the pool must pickle under ``spawn``,
where a worker is a fresh interpreter: see :class:`ChildFunction`.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import threading
import time

import pytest

from pytest_concurrency import load_impl
from pytest_concurrency.testing import children, start_method, within  # noqa: F401  (fixtures)

pool_tasks = load_impl("pool_tasks")

# Generous: a correct implementation needs a fraction of a second, but the
# machine may be busy.  Only a broken implementation ever waits this long.
PATIENCE = 20.0

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns when forking while threads run; the tests' watchdog is a thread.
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


class ChildFunction:
    """A small function for pool workers, written as the source of a lambda.

    Under ``spawn`` a task is pickled, and a function is pickled by name: one
    defined in this test file cannot be found by a worker, which cannot import
    the test module.  A ChildFunction travels as its source text and is
    rebuilt in the worker, under either start method.

    >>> square = ChildFunction("lambda x: x * x")
    >>> square(7)
    49
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._function = eval(source)

    def __call__(self, *args):
        return self._function(*args)

    def __reduce__(self):
        return (eval, (self.source,))

    def __repr__(self) -> str:
        return f"ChildFunction({self.source!r})"


square = ChildFunction("lambda x: x * x")
worker_pid = ChildFunction("lambda x: __import__('os').getpid()")
square_and_pid = ChildFunction("lambda x: (x * x, __import__('os').getpid())")
inverse_of_x_minus_3 = ChildFunction("lambda x: 1 / (x - 3)")
# Called with a manager's proxy: waits on a Barrier or an Event, or sets the Event.
meet = ChildFunction("lambda barrier: barrier.wait(10)")
sleep_for_ever = ChildFunction("lambda: __import__('time').sleep(3600)")




@pytest.fixture
def pools(monkeypatch) -> list:
    """Every ``multiprocessing.pool.Pool`` made during the test, with whether it was closed
    (or terminated) and joined.  The list keeps each pool alive, so the garbage collector
    cannot tidy up a pool the code under test left open."""
    made: list = []
    real_init, real_join = multiprocessing.pool.Pool.__init__, multiprocessing.pool.Pool.join

    def init(pool, *args, **kwargs):
        made.append(pool)
        pool._test_joined = False
        real_init(pool, *args, **kwargs)

    def join(pool):
        real_join(pool)
        pool._test_joined = True

    monkeypatch.setattr(multiprocessing.pool.Pool, "__init__", init)
    monkeypatch.setattr(multiprocessing.pool.Pool, "join", join)
    return made


def assert_pools_closed_and_joined(pools: list, call: str) -> None:
    for pool in pools:
        state = getattr(pool, "_state", None)
        assert state != "RUN", (
            f"{call} returned with its pool still open: close() it (or terminate() it on an "
            "error), then join() it, before returning"
        )
        assert getattr(pool, "_test_joined", True), (
            f"{call} closed its pool but never joined it: join() waits for the workers to end"
        )


# --- parallel_map ---------------------------------------------------------------------------


@pytest.mark.points(3)
def test_parallel_map_returns_results_in_order_computed_by_workers(start_method, children, pools):
    results = within(PATIENCE, pool_tasks.parallel_map, square_and_pid, range(20), 2)
    assert_pools_closed_and_joined(pools, "parallel_map")
    squares = [square for square, _ in results]
    assert squares == [x * x for x in range(20)], f"results in the order of the items expected: {squares}"
    pids = [pid for _, pid in results]
    assert os.getpid() not in pids, "parallel_map ran fn in the test's own process, not in workers"
    children.assert_none_left("after parallel_map returned (close and join the pool)")


@pytest.mark.points(2)
def test_parallel_map_uses_the_number_of_processes_asked_for(children):
    pids = within(PATIENCE, pool_tasks.parallel_map, worker_pid, range(12), 1)
    assert len(set(pids)) == 1, f"processes=1, yet {len(set(pids))} worker processes ran the tasks"
    children.assert_none_left("after parallel_map returned (close and join the pool)")


@pytest.mark.points(3)
def test_parallel_map_really_runs_tasks_at_the_same_time(children):
    """Three tasks meet at a three-party barrier: only three workers at once get them through."""
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(3)
        try:
            arrivals = within(PATIENCE, pool_tasks.parallel_map, meet, [barrier] * 3, 3)
        except threading.BrokenBarrierError:
            raise AssertionError(
                "with processes=3, three tasks never ran at the same time"
            ) from None
    assert sorted(arrivals) == [0, 1, 2]
    children.assert_none_left("after parallel_map returned (close and join the pool)")


@pytest.mark.points(2)
def test_parallel_map_keeps_input_order_when_tasks_finish_out_of_order(children):
    """The first task finishes a second after the second one: results must still be in order."""
    # The second result reaches the parent while the first task still sleeps; the
    # second is only a margin for a busy machine (a correct pool passes regardless).
    wait_or_set = ChildFunction(
        "lambda job: (job[1].wait(10), __import__('time').sleep(1.0))[0] "
        "if job[0] == 'wait' else job[1].set()"
    )
    with multiprocessing.Manager() as manager:
        second_done = manager.Event()
        results = within(
            PATIENCE, pool_tasks.parallel_map, wait_or_set,
            [("wait", second_done), ("set", second_done)], 2,
        )
    assert results == [True, None], (
        f"results must be in the order of the items, not of completion: got {results}"
    )
    children.assert_none_left("after parallel_map returned (close and join the pool)")


@pytest.mark.points(2)
def test_an_exception_in_a_task_is_raised_by_parallel_map(children):
    with pytest.raises(ZeroDivisionError):
        within(PATIENCE, pool_tasks.parallel_map, inverse_of_x_minus_3, range(6), 2)
    children.assert_none_left("after parallel_map raised (terminate or close the pool, then join it)")


# --- submit_all -----------------------------------------------------------------------------


class CallbackLog:
    """A callback that notes each result and the process and thread that called it."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, int]] = []
        self._lock = threading.Lock()

    def __call__(self, result) -> None:
        with self._lock:
            self.calls.append((result, os.getpid()))


@pytest.mark.points(3)
def test_submit_all_calls_back_in_the_parent_and_returns_ordered_results(start_method, children, pools):
    log = CallbackLog()
    results = within(PATIENCE, pool_tasks.submit_all, square, range(10), 2, log)
    assert_pools_closed_and_joined(pools, "submit_all")
    assert results == [x * x for x in range(10)], f"results in the order of the items expected: {results}"
    called_with = sorted(result for result, _ in log.calls)
    assert called_with == [x * x for x in range(10)], (
        f"the callback must be called once per result before submit_all returns; it got {called_with}"
    )
    assert {pid for _, pid in log.calls} == {os.getpid()}, "callbacks must run in the parent process"
    children.assert_none_left("after submit_all returned (close, then join the pool)")


@pytest.mark.points(2)
def test_an_exception_in_a_task_is_raised_by_submit_all_after_the_others_finished(children):
    log = CallbackLog()
    with pytest.raises(ZeroDivisionError):
        within(PATIENCE, pool_tasks.submit_all, inverse_of_x_minus_3, range(6), 2, log)
    called_with = sorted(result for result, _ in log.calls)
    expected = sorted(1 / (x - 3) for x in range(6) if x != 3)
    assert called_with == expected, (
        f"the five tasks that succeeded must still have called back: got {called_with}"
    )
    children.assert_none_left("after submit_all raised (close, then join the pool)")


# --- first_result ---------------------------------------------------------------------------


@pytest.mark.points(3)
def test_first_result_returns_the_fastest_and_terminates_the_rest(start_method, children):
    fast = ChildFunction("lambda: 'fast'")
    started = time.monotonic()
    result = within(PATIENCE, pool_tasks.first_result, [sleep_for_ever, fast, sleep_for_ever], 3, PATIENCE)
    assert result == "fast"
    elapsed = time.monotonic() - started
    assert elapsed < PATIENCE, f"first_result took {elapsed:.1f} s"
    children.assert_none_left("after first_result returned (terminate the pool, then join it)")


@pytest.mark.points(2)
def test_first_result_raises_timeout_error_when_nothing_finishes(children):
    with pytest.raises((TimeoutError, multiprocessing.TimeoutError)):
        within(PATIENCE, pool_tasks.first_result, [sleep_for_ever, sleep_for_ever], 2, 0.5)
    children.assert_none_left("after first_result timed out (terminate the pool, then join it)")


@pytest.mark.points(2)
def test_first_result_sleeps_while_it_waits(children):
    """A loop that asks ``ready()`` (or ``get_nowait()``) again and again keeps one CPU
    busy for the whole wait: the parent's CPU time shows it, whatever the machine's speed."""
    used = time.process_time()
    with pytest.raises((TimeoutError, multiprocessing.TimeoutError)):
        within(PATIENCE, pool_tasks.first_result, [sleep_for_ever, sleep_for_ever], 2, 3.0)
    used = time.process_time() - used
    assert used < 0.5, (
        f"first_result kept a CPU busy while it waited: {used:.1f} s of CPU in 3 s of waiting. "
        "Block instead of asking again and again: a Queue's get(timeout=...) that the "
        "callbacks fill, or an Event the callbacks set"
    )
    children.assert_none_left("after first_result timed out (terminate the pool, then join it)")


@pytest.mark.points(1)
def test_first_result_raises_the_exception_of_the_first_task_to_finish(children):
    with pytest.raises(ZeroDivisionError):
        within(PATIENCE, pool_tasks.first_result, [sleep_for_ever, ChildFunction("lambda: 1 / 0")], 2, PATIENCE)
    children.assert_none_left("after first_result raised (terminate the pool, then join it)")
