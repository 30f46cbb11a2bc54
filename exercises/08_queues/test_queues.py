"""Graded tests of exercise 08: FIFO, LIFO and priority queues, task_done/join, a fair scheduler."""

from __future__ import annotations

import collections
import queue
import threading
import time
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_concurrency import BLOCKS, Operation, Raises, load_impl, scenarios, schedules
from pytest_concurrency.testing import THREAD_PATIENCE as PATIENCE
from pytest_concurrency.testing import Background, wait_until_blocked

queues = load_impl("queues")

# A controlled run of these tests takes a few hundred steps: far more means spinning.
MAX_STEPS = 20_000
# Tests on the virtual clock of schedules() (time.sleep and timeouts cost no real
# time there) whose outcome does not depend on the interleaving: a few schedules
# show it, and there is no "explain" phase rerunning a failure to no purpose.
timing_settings = settings(
    max_examples=5, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)


class Uncomparable:
    """An item that fails loudly when compared: a scheduler must never compare items."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Uncomparable({self.name!r})"

    def _refuse(self, other: object) -> bool:
        raise AssertionError(
            f"{self!r} was compared with {other!r}: with equal priorities, a (priority, item) "
            "tuple compares the items; put a sequence number between them"
        )

    __lt__ = __le__ = __gt__ = __ge__ = _refuse


# -- the three queues ------------------------------------------------------------------------


@pytest.mark.points(1)
def test_fifo_order_is_first_in_first_out():
    result = queues.fifo_order([3, 1, 2, "x"])
    assert result == [3, 1, 2, "x"], f"fifo_order([3, 1, 2, 'x']) returned {result!r}"


@pytest.mark.points(1)
def test_lifo_order_is_last_in_first_out():
    result = queues.lifo_order([3, 1, 2, "x"])
    assert result == ["x", 2, 1, 3], f"lifo_order([3, 1, 2, 'x']) returned {result!r}"


@pytest.mark.points(2)
def test_priority_order_is_lowest_first_and_first_come_first_served_among_ties():
    pairs = [(2, {"job": "b"}), (1, {"job": "a"}), (3, {"job": "d"}), (2, {"job": "c"}),
             (1, Uncomparable("a2")), (2, Uncomparable("c2"))]
    result = queues.priority_order(pairs)
    names = [item["job"] if isinstance(item, dict) else item.name for item in result]
    assert names == ["a", "a2", "b", "c", "c2", "d"], (
        f"priority_order gave the items in the order {names}; want lowest priority first and, "
        "among equal priorities, the order they were given in"
    )


@pytest.mark.points(1)
def test_each_order_goes_through_its_queue_class(monkeypatch):
    made: collections.Counter[str] = collections.Counter()
    for name in ("Queue", "LifoQueue", "PriorityQueue"):
        original = getattr(queue, name)

        def init(self, *args, _name=name, _original=original, **kwargs):
            made[_name] += 1
            _original.__init__(self, *args, **kwargs)

        spy = type(name, (original,), {"__init__": init})
        monkeypatch.setattr(queue, name, spy)
        if getattr(queues, name, None) is original:  # `from queue import Queue`
            monkeypatch.setattr(queues, name, spy)
    queues.fifo_order([1, 2])
    queues.lifo_order([1, 2])
    queues.priority_order([(1, "a"), (0, "b")])
    missing = [name for name in ("Queue", "LifoQueue", "PriorityQueue") if not made[name]]
    assert not missing, (
        f"fifo_order, lifo_order and priority_order never made a queue.{', queue.'.join(missing)}: "
        "each one is about its queue class"
    )


# -- process_all: workers, task_done, join -------------------------------------------------------


@pytest.mark.points(2)
def test_process_all_returns_every_result_by_item():
    result = queues.process_all(range(20), lambda x: x * x, n_workers=3)
    want = {x: x * x for x in range(20)}
    missing = sorted(set(want) - set(result))
    assert not missing, f"{len(missing)} items have no result: {missing}"
    wrong = {k: v for k, v in result.items() if want.get(k) != v}
    assert not wrong, f"wrong results (item: result): {wrong}"


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -1])
def test_process_all_with_fewer_than_one_worker_is_a_value_error(bad):
    with pytest.raises(ValueError):
        queues.process_all([1, 2], abs, n_workers=bad)


@pytest.mark.points(2)
def test_process_all_runs_n_workers_handlers_at_the_same_time():
    n = 3
    rendezvous = threading.Barrier(n, timeout=PATIENCE)

    def handler(item: int) -> int:
        if item < n:  # the first n items can only finish together
            try:
                rendezvous.wait()
            except threading.BrokenBarrierError:
                raise AssertionError(
                    f"{n} items were never handled at the same time with n_workers={n}"
                ) from None
        return item

    job = Background(queues.process_all, range(2 * n), handler, n, name="process_all")
    assert job.outcome("process_all with 3 workers") == {i: i for i in range(2 * n)}


@pytest.mark.points(2)
def test_process_all_uses_n_worker_threads_again_and_again():
    seen: set[threading.Thread] = set()
    lock = threading.Lock()

    def handler(item: int) -> int:
        with lock:
            seen.add(threading.current_thread())
        return item

    queues.process_all(range(50), handler, n_workers=2)
    assert 1 <= len(seen) <= 2, (
        f"50 items were handled by {len(seen)} different threads with n_workers=2: "
        "start n_workers threads that each take item after item from the queue"
    )
    assert threading.current_thread() not in seen, (
        "the handler ran in the calling thread: the workers must do the work"
    )


@pytest.mark.points(2)
@timing_settings
@given(schedules(max_steps=MAX_STEPS))
def test_process_all_returns_only_after_every_item_was_handled(schedule):
    n_items, work = 6, 1.0
    finished: list[int] = []  # list.append is atomic

    def handler(item: int) -> int:
        time.sleep(work)  # virtual: every item takes a second of work
        finished.append(item)
        return item

    def call() -> tuple[int, float]:
        start = time.monotonic()
        queues.process_all(range(n_items), handler, 2)
        return len(finished), time.monotonic() - start

    ((handled, took),) = schedule.run(call)
    assert handled == n_items, (
        f"process_all returned at t={took:g} s (virtual) when {handled} of {n_items} items "
        f"had been handled (each takes {work:g} s): wait for the queue with join() before "
        "collecting the results"
    )


@pytest.mark.points(3)
def test_an_exception_in_the_handler_is_raised_after_every_other_item_was_handled():
    class Boom(Exception):
        pass

    handled: list[int] = []

    def handler(item: int) -> int:
        if item == 3:
            raise Boom("item 3")
        handled.append(item)
        return item

    job = Background(queues.process_all, range(10), handler, 2, name="process_all")
    try:
        job.outcome(
            "process_all with a handler that raised: an item whose handler raised must still "
            "be marked task_done (in a finally), or join() waits for it forever"
        )
    except Boom:
        pass
    else:
        pytest.fail("the handler raised Boom for item 3, but process_all did not raise it")
    missing = sorted(set(range(10)) - {3} - set(handled))
    assert not missing, f"after the handler failed on item 3, items {missing} were never handled"


@pytest.mark.points(2)
def test_no_worker_thread_is_left_behind():
    workers: set[threading.Thread] = set()
    lock = threading.Lock()

    def handler(item: int) -> int:
        with lock:
            workers.add(threading.current_thread())
        if item == 7:
            raise ValueError("item 7")
        return item

    with pytest.raises(ValueError):
        Background(queues.process_all, range(12), handler, 3, name="process_all").outcome(
            "process_all"
        )
    queues.process_all(range(12), abs, 3)
    for worker in workers:
        worker.join(PATIENCE)  # a worker may still be on its way out after its last task_done
    alive = sorted(w.name for w in workers if w.is_alive())
    assert not alive, (
        f"after process_all returned, workers {alive} were still alive: give every worker its "
        "own stop signal (one per worker, not one per pool) and join them"
    )


@pytest.mark.points(1)
def test_process_all_waits_with_task_done_and_join(monkeypatch):
    calls: collections.Counter[str] = collections.Counter()
    original_task_done, original_join = queue.Queue.task_done, queue.Queue.join

    def task_done(self):
        calls["task_done"] += 1
        original_task_done(self)

    def join(self):
        calls["join"] += 1
        original_join(self)

    monkeypatch.setattr(queue.Queue, "task_done", task_done)
    monkeypatch.setattr(queue.Queue, "join", join)
    queues.process_all(range(6), abs, 2)
    assert calls["join"] >= 1 and calls["task_done"] >= 6, (
        f"process_all called Queue.task_done {calls['task_done']} times and Queue.join "
        f"{calls['join']} times for 6 items: the exercise is to wait with task_done/join"
    )


# -- PriorityScheduler ------------------------------------------------------------------------


@pytest.mark.points(2)
def test_scheduler_hands_out_the_lowest_priority_first():
    scheduler = queues.PriorityScheduler()
    for priority, item in [(5, "e"), (1, "a"), (3, "c"), (2, "b"), (4, "d")]:
        scheduler.submit(priority, item)
    order = [scheduler.next(timeout=PATIENCE) for _ in range(5)]
    assert order == ["a", "b", "c", "d", "e"], (
        f"items submitted with priorities 5, 1, 3, 2, 4 came out as {order}"
    )


@pytest.mark.points(2)
def test_scheduler_is_first_come_first_served_among_equal_priorities():
    scheduler = queues.PriorityScheduler()
    items = [{"job": i} for i in range(30)]
    # Submitted in neither creation order nor its reverse, so that no accident of
    # memory layout (ties broken by id(item)) can pass for first come, first served.
    submitted = [(i % 3, items[(7 * i) % 30]) for i in range(30)]
    for priority, item in submitted:
        scheduler.submit(priority, item)
    order = [scheduler.next(timeout=PATIENCE) for _ in range(30)]
    want = [item for _, item in sorted(submitted, key=lambda pair: pair[0])]  # a stable sort
    assert order == want, (
        "among equal priorities items must come out in the order they were submitted:\n"
        f"  got  {order}\n  want {want}"
    )


@pytest.mark.points(2)
def test_scheduler_never_compares_the_items():
    scheduler = queues.PriorityScheduler()
    jobs = [{"job": "b"}, Uncomparable("c"), {"job": "d"}]
    scheduler.submit(1, {"job": "a"})
    for job in jobs:
        scheduler.submit(2, job)  # ties between a dict and an uncomparable object
    try:
        order = [scheduler.next(timeout=PATIENCE) for _ in range(4)]
    except TypeError as error:
        raise AssertionError(
            f"two items of equal priority were compared ({error}): the course text's "
            "(priority, data) tuples break on ties; put a sequence number between them"
        ) from None
    assert order == [{"job": "a"}, *jobs], f"items came out as {order}"


@pytest.mark.points(1)
@timing_settings
@given(schedules(max_steps=MAX_STEPS))
def test_scheduler_next_raises_queue_empty_after_the_timeout(schedule):
    timeout = 3.0
    scheduler = queues.PriorityScheduler()

    def take() -> tuple[str, float]:
        start = time.monotonic()
        try:
            got = scheduler.next(timeout=timeout)
        except queue.Empty:
            return "queue.Empty", time.monotonic() - start
        return f"returned {got!r}", time.monotonic() - start

    ((outcome, took),) = schedule.run(take)
    assert len(scheduler) == 0, f"a new scheduler has len {len(scheduler)}"
    assert outcome == "queue.Empty", (
        f"next(timeout={timeout:g}) on an empty scheduler {outcome} after {took:g} s "
        "(virtual): it must wait for a submit and, after the timeout, raise queue.Empty"
    )
    assert took == pytest.approx(timeout), (
        f"next(timeout={timeout:g}) on an empty scheduler gave up after {took:g} s (virtual): "
        "it must wait the whole timeout"
    )


@pytest.mark.points(1)
def test_scheduler_len_counts_the_waiting_items():
    scheduler = queues.PriorityScheduler()
    for i in range(4):
        scheduler.submit(i, {"n": i})
    scheduler.next(timeout=PATIENCE)
    assert len(scheduler) == 3, f"4 submitted, 1 taken: len is {len(scheduler)}, want 3"


@pytest.mark.points(2)
def test_a_waiting_next_wakes_when_another_thread_submits():
    scheduler = queues.PriorityScheduler()
    taker = Background(scheduler.next, PATIENCE, name="taker")
    wait_until_blocked(taker, "next() on an empty scheduler")
    scheduler.submit(1, {"job": "late"})
    assert taker.outcome("next() while another thread submits") == {"job": "late"}


@pytest.mark.points(2)
@given(schedules(max_steps=MAX_STEPS))
def test_next_and_submit_at_the_same_time_lose_no_wakeup(schedule):
    scheduler = queues.PriorityScheduler()
    # No timeout: a next() nobody wakes is reported as a deadlock.
    got, _ = schedule.run(scheduler.next, lambda: scheduler.submit(1, {"job": "late"}))
    assert got == {"job": "late"}, f"next() while another thread submits returned {got!r}"


@pytest.mark.points(2)
@given(schedules(max_steps=MAX_STEPS))
def test_submits_from_many_threads_at_once_lose_nothing(schedule):
    scheduler = queues.PriorityScheduler()

    def submitter(name: str) -> None:
        for n in range(2):
            scheduler.submit(1, {"from": name, "n": n})  # equal priorities: dicts must never meet

    try:
        schedule.run(lambda: submitter("a"), lambda: submitter("b"))
    except TypeError as error:
        raise AssertionError(
            f"two submits at the same time ended with items being compared ({error}): "
            "the sequence number must be unique even when threads submit at once "
            "(`self.n += 1` is not atomic; itertools.count or a lock is)"
        ) from None
    assert len(scheduler) == 4, f"4 items submitted by 2 threads, len is {len(scheduler)}"
    order = [scheduler.next(timeout=PATIENCE) for _ in range(4)]
    for name in "ab":
        mine = [item["n"] for item in order if item["from"] == name]
        assert mine == [0, 1], f"thread {name} submitted n=0 then n=1 but they came out as {mine}"


# -- linearizability: the scheduler's submit, next and len from several threads at once ----------
# Hypothesis draws small scenarios (2-3 threads of 1-3 calls, a set-up and an after part),
# each runs under a drawn schedule, and every result must be explained by some sequential
# order of the calls: lowest priority first, first come first served among equals, and a
# next() on an empty scheduler waits (next(timeout=1) raises queue.Empty).


def scheduler_model(state: tuple, name: str, *args: Any) -> Any:
    """``state`` is ``(submitted so far, ((priority, order, item), ...))``: ``(result, new_state)``."""
    count, waiting = state
    if name == "submit":
        return None, (count + 1, tuple(sorted((*waiting, (args[0], count, args[1])))))
    if name == "len":
        return len(waiting), state
    if not waiting:
        return BLOCKS if name == "next" else (Raises(queue.Empty), state)
    return waiting[0][2], (count, waiting[1:])


SCHEDULER_OPERATIONS = [
    Operation("submit", lambda s, p, item: s.submit(p, item), st.sampled_from([1, 2]), st.sampled_from("abc")),
    Operation("next", lambda s: s.next()),
    Operation("next(timeout=1)", lambda s: s.next(timeout=1)),
    Operation("len", len),
]


@pytest.mark.points(3)
@settings(max_examples=200, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(scenarios(SCHEDULER_OPERATIONS, setup=SCHEDULER_OPERATIONS[:1]), schedules(max_steps=MAX_STEPS))
def test_submit_next_and_len_from_several_threads_are_linearizable(scenario, schedule):
    scenario.check(schedule, queues.PriorityScheduler, scheduler_model, initial=(0, ()))
