"""The linearizability checker: the search, the scenarios, the report, and no false alarm."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_concurrency import BLOCKS, NotLinearizable, Operation, Raises, scenarios, schedules
from pytest_concurrency.linearizability import Call, check

QUIET = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]


def queue_model(items: tuple, name: str, *args: Any) -> Any:
    """A sequential FIFO queue."""
    if name == "put":
        return None, items + args
    if name == "get":
        return (items[0], items[1:]) if items else BLOCKS
    if name == "get_nowait":
        return (items[0], items[1:]) if items else (Raises(queue.Empty), items)
    return len(items), items  # qsize


QUEUE_OPERATIONS = [
    Operation("put", lambda q, x: q.put(x), st.sampled_from("abc")),
    Operation("get", lambda q: q.get()),
    Operation("get_nowait", lambda q: q.get_nowait()),
    Operation("qsize", lambda q: q.qsize()),
]


# -- the search ---------------------------------------------------------------------------------


def register(state: int, name: str, *args: Any) -> Any:
    return (None, args[0]) if name == "write" else (state, state)


def test_an_overlapping_read_may_see_the_old_or_the_new_value():
    for seen in (0, 1):
        calls = [Call(1, "write", (1,), 0, 3), Call(2, "read", (), 1, 2, value=seen)]
        assert check(calls, register, 0).ok


def test_real_time_order_is_kept():
    # The read starts after the write returned: it must see 1.
    calls = [Call(1, "write", (1,), 0, 1), Call(2, "read", (), 2, 3, value=0)]
    verdict = check(calls, register, 0)
    assert not verdict.ok
    assert verdict.reasons == ["thread 2: read() returned 0, where a sequential model returns 1"]


def test_exceptions_are_results():
    calls = [Call(1, "get_nowait", (), 0, 1, error=queue.Empty())]
    assert check(calls, queue_model, ()).ok
    calls = [Call(1, "get_nowait", (), 0, 1, error=KeyError("x"))]
    assert not check(calls, queue_model, ()).ok


def test_a_call_that_never_returned_must_be_one_that_waits():
    waiting = [Call(1, "get", (), 0, None)]
    assert check(waiting, queue_model, ()).ok
    # An item was there all along: a get cannot be waiting (a lost wakeup).
    lost = [Call(1, "put", ("a",), 0, 1), Call(2, "get", (), 2, None)]
    verdict = check(lost, queue_model, ())
    assert not verdict.ok
    assert "never returned, where a sequential model returns 'a'" in verdict.reasons[0]


def nine_overlapping_puts() -> list[Call]:
    """3 threads of 3 puts: each thread's calls one after another (as in any real history),
    and every call overlapping every call of the other threads that it can."""
    return [Call(t, "put", (f"{t}{k}",), 10 * k + t, 10 * k + 10 + t) for t in (1, 2, 3) for k in range(3)]


def test_a_history_of_nine_overlapping_calls_checks_well_under_a_second():
    calls = nine_overlapping_puts()
    calls.append(Call(1, "get", (), 200, 201, value=99))  # impossible: the whole space is searched
    start = time.perf_counter()
    verdict = check(calls, queue_model, ())
    took = time.perf_counter() - start
    assert not verdict.ok
    assert took < 0.5, f"9 overlapping calls took {took:.2f} s to check"


# -- scenarios under schedules -----------------------------------------------------------------


@settings(max_examples=1000, phases=QUIET, derandomize=True, database=None)
@given(scenarios(QUEUE_OPERATIONS), schedules())
def test_queue_queue_is_linearizable_over_1000_scenarios(scenario, schedule):
    scenario.check(schedule, queue.Queue, queue_model, ())


class RacyQueue:
    """A queue whose size is a counter changed without a lock."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.size = 0
        self.lock = threading.Lock()

    def put(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)
        self.size += 1

    def get_nowait(self) -> Any:
        with self.lock:
            if not self.items:
                raise queue.Empty
            item = self.items.pop(0)
        self.size -= 1
        return item

    def qsize(self) -> int:
        return self.size


def test_a_racy_queue_is_caught_with_a_short_readable_report():
    operations = [op for op in QUEUE_OPERATIONS if op.name != "get"]
    failures: list[str] = []

    @settings(max_examples=300, phases=QUIET, derandomize=True, database=None)
    @given(scenarios(operations), schedules())
    def run(scenario, schedule):
        try:
            scenario.check(schedule, RacyQueue, queue_model, ())
        except NotLinearizable as error:
            failures.append(str(error))
            raise

    with pytest.raises(NotLinearizable):
        run()
    report = failures[-1]  # the shrunk one
    assert report.startswith("RacyQueue is not linearizable")
    assert "| thread 1" in report and "Nothing can come next" in report
    assert "pytest_concurrency" not in report, report
    assert "RacyQueue.qsize (tests/test_linearizability.py:" in report, report
    assert report.count("\n") < 30, report


def test_a_deadlock_with_no_call_left_waiting_is_a_failure():
    class Stuck:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def grab(self) -> None:
            self.lock.acquire()  # never released: the next grab waits for ever

    model = lambda state, name: (None, state)  # noqa: E731 - grabbing always works, sequentially

    @settings(max_examples=20, phases=QUIET, derandomize=True, database=None)
    @given(scenarios([Operation("grab", Stuck.grab)], threads=(2, 2), calls=(1, 1), max_setup=0, max_after=0),
           schedules())
    def run(scenario, schedule):
        scenario.check(schedule, Stuck, model, None)

    with pytest.raises(NotLinearizable, match="never returned"):
        run()


def test_scenarios_are_drawn_within_their_bounds():
    @settings(max_examples=50, phases=QUIET, derandomize=True, database=None)
    @given(scenarios(QUEUE_OPERATIONS, threads=(2, 3), calls=(1, 3), max_setup=2, max_after=1))
    def run(scenario):
        assert 2 <= len(scenario.threads) <= 3
        assert all(1 <= len(lane) <= 3 for lane in scenario.threads)
        assert len(scenario.setup) <= 2 and len(scenario.after) <= 1

    run()
