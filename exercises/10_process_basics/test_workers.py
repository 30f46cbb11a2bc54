"""Graded tests of exercise 10: a Process subclass, and a function run in a child process.

The tests run under both start methods: ``fork`` (Linux's default) and
``spawn`` (the default on macOS and Windows, where a child is a fresh
interpreter that receives everything pickled).  Every function handed to a
child here comes from the standard library, so it pickles under both.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import operator
import os
import queue
import time

import pytest

from pytest_concurrency import load_impl
from pytest_concurrency.testing import children, start_method, within  # noqa: F401  (fixtures)

workers = load_impl("workers")

# Generous: a correct implementation needs a fraction of a second, but the
# machine may be busy.  Only a broken implementation ever waits this long.
PATIENCE = 20.0

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns when forking while threads run; the tests' watchdog is a thread.
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)




# --- ClockProcess -------------------------------------------------------------------------


def collect_ticks(clock, ticks: queue.Queue, count: int) -> list[tuple]:
    """Start ``clock``, read its ``count`` ticks, join it; fail rather than hang."""
    clock.start()
    received = []
    for n in range(count):
        try:
            received.append(ticks.get(timeout=PATIENCE))
        except queue.Empty:
            raise AssertionError(f"the clock sent {n} of {count} ticks, then nothing") from None
    clock.join(PATIENCE)
    assert not clock.is_alive(), f"the clock process was still running {PATIENCE:g} s after its last tick"
    return received


@pytest.mark.points(1)
def test_clock_process_is_a_multiprocessing_process():
    clock = workers.ClockProcess(0.1, 1, multiprocessing.Queue())
    assert isinstance(clock, multiprocessing.Process), (
        "ClockProcess must subclass multiprocessing.Process"
    )
    assert not clock.is_alive(), "creating a ClockProcess must not start it"


@pytest.mark.points(3)
def test_clock_ticks_in_order_from_its_own_process(start_method, children):
    ticks = multiprocessing.Queue()
    clock = workers.ClockProcess(0.01, 3, ticks)
    received = collect_ticks(clock, ticks, 3)
    assert [tick[0] for tick in received] == [0, 1, 2], f"ticks must be numbered 0, 1, 2: {received}"
    pids = {tick[1] for tick in received}
    assert pids == {clock.pid}, f"every tick must carry the clock's pid {clock.pid}: {received}"
    assert clock.pid != os.getpid(), "the clock ran in the test's own process, not a child"
    assert ticks.empty(), "the clock sent more than `count` ticks"
    assert clock.exitcode == 0, f"the clock process ended with exit code {clock.exitcode}"
    children.assert_none_left("after the clock was joined")


@pytest.mark.points(2)
def test_clock_ticks_are_interval_apart():
    ticks = multiprocessing.Queue()
    interval = 0.15
    received = collect_ticks(workers.ClockProcess(interval, 3, ticks), ticks, 3)
    times = [tick[2] for tick in received]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    # A lower bound only: sleeping can take longer on a busy machine, never shorter.
    assert all(gap >= interval * 0.9 for gap in gaps), (
        f"ticks {interval} s apart expected, the gaps were {[round(g, 3) for g in gaps]} s"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("interval, count", [(0, 3), (-1, 3), (0.1, -1)])
def test_clock_rejects_bad_arguments(interval, count):
    with pytest.raises(ValueError):
        workers.ClockProcess(interval, count, multiprocessing.Queue())


# --- run_in_process -----------------------------------------------------------------------


@pytest.mark.points(3)
def test_run_in_process_returns_what_the_child_computed(start_method, children):
    child_pid = within(PATIENCE, workers.run_in_process, os.getpid)
    assert child_pid != os.getpid(), "run_in_process ran fn in the test's own process"
    assert within(PATIENCE, workers.run_in_process, pow, 2, 10) == 1024
    if start_method == "fork":  # spawn children start slowly: the two calls above suffice there
        assert within(PATIENCE, workers.run_in_process, sorted, "cab") == ["a", "b", "c"]
        assert within(PATIENCE, workers.run_in_process, time.sleep, 0) is None
    children.assert_none_left("after run_in_process returned")


@pytest.mark.points(3)
def test_an_exception_in_the_child_is_raised_in_the_parent(children):
    with pytest.raises(ZeroDivisionError):
        within(PATIENCE, workers.run_in_process, operator.truediv, 1, 0)
    with pytest.raises(ValueError, match="twelve"):
        within(PATIENCE, workers.run_in_process, int, "twelve")
    children.assert_none_left("after run_in_process raised")


@pytest.mark.points(2)
def test_a_large_result_comes_back_whole(children):
    """Joining the child before reading its answer deadlocks once the answer fills the pipe."""
    size = 4_000_000
    result = within(PATIENCE, workers.run_in_process, bytes, size, timeout=PATIENCE)
    assert isinstance(result, bytes) and len(result) == size, (
        f"expected {size} bytes back, got {type(result).__name__} of length {len(result)}"
    )
    children.assert_none_left("after run_in_process returned")


@pytest.mark.points(3)
def test_timeout_kills_the_child_and_raises_timeout_error(children):
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        within(PATIENCE, workers.run_in_process, time.sleep, 3600, timeout=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < PATIENCE, f"run_in_process with timeout=0.3 took {elapsed:.1f} s"
    children.assert_none_left("after run_in_process timed out (kill the child, then join it)")


@pytest.mark.points(2)
def test_a_child_that_dies_without_an_answer_is_a_runtime_error(children):
    # os._exit in the test's own process would end the whole test run: check first.
    assert within(PATIENCE, workers.run_in_process, os.getpid) != os.getpid(), (
        "run_in_process ran fn in the test's own process, not in a child"
    )
    with pytest.raises(RuntimeError, match="3"):
        within(PATIENCE, workers.run_in_process, os._exit, 3)
    children.assert_none_left("after the child died")
