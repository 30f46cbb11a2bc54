"""Graded tests of exercise 09: a bounded buffer on a Condition, and a producer-consumer pipeline."""

from __future__ import annotations

import ast
import collections
import inspect
import queue
import threading
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_concurrency import (
    BLOCKS,
    Operation,
    Raises,
    explore_all,
    load_impl,
    scenarios,
    schedules,
)
from pytest_concurrency.testing import THREAD_PATIENCE as PATIENCE
from pytest_concurrency.testing import Background, timed, timeout_hint, wait_until_blocked

pipeline = load_impl("pipeline")

# The timeouts are tested on the virtual clock of schedules(): inside schedule.run,
# time.monotonic() and the timeouts of Condition.wait count virtual seconds, which
# only pass when every thread waits. A timeout of 3 s expires at exactly t=3, costs
# no real time, and does not depend on how busy the machine is.
TIMEOUT = 3.0
# A controlled run of these tests takes under 1,000 steps: far more means spinning.
MAX_STEPS = 20_000
# Tests whose outcome does not depend on the interleaving: a few schedules show it,
# and there is no "explain" phase rerunning a failure to no purpose.
timing_settings = settings(
    max_examples=5, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)


def assert_gave_up(what: str, outcome: tuple[str, Any, float], exception: type[Exception]) -> None:
    """``outcome`` (from :func:`timed`) must be ``exception`` raised after exactly TIMEOUT seconds."""
    how, value, took = outcome
    want = f"queue.{exception.__name__}"
    if how == "returned":
        pytest.fail(f"{what} returned {value!r} after {took:g} s (virtual); it must raise {want}")
    if isinstance(value, NotImplementedError):
        raise value
    if not isinstance(value, exception):
        pytest.fail(
            f"{what} raised {type(value).__name__}: {value} after {took:g} s (virtual); it must "
            f"raise {want}, as the queue module does"
        )
    assert took == pytest.approx(TIMEOUT), (
        f"{what} raised {want} after {took:g} s (virtual), not after the timeout of "
        f"{TIMEOUT:g} s: {timeout_hint(took, TIMEOUT)}"
    )


def exactly_once(produced: Iterable[Any], consumed: Iterable[Any]) -> str | None:
    """What went wrong between what was produced and what was consumed, or None.

    >>> exactly_once([1, 2, 2, 3], [2, 1, 3])
    '1 item was lost: produced 4, consumed 3 (lost: [2])'
    """
    want, got = collections.Counter(produced), collections.Counter(consumed)
    if want == got:
        return None
    lost, extra = sorted((want - got).elements(), key=repr), sorted((got - want).elements(), key=repr)
    problems = []
    if lost:
        problems.append(f"{len(lost)} item{'s were' if len(lost) > 1 else ' was'} lost")
    if extra:
        problems.append(f"{len(extra)} item{'s were' if len(extra) > 1 else ' was'} duplicated or made up")
    details = [f"lost: {lost[:10]}"] * bool(lost) + [f"extra: {extra[:10]}"] * bool(extra)
    return (
        f"{' and '.join(problems)}: produced {sum(want.values())}, consumed {sum(got.values())} "
        f"({'; '.join(details)})"
    )


def pipeline_threads_alive(before: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


# -- BoundedBuffer ---------------------------------------------------------------------------


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -1])
def test_capacity_below_one_is_a_value_error(bad):
    with pytest.raises(ValueError):
        pipeline.BoundedBuffer(bad)


@pytest.mark.points(2)
def test_the_buffer_is_first_in_first_out_and_counts_its_items():
    buffer = pipeline.BoundedBuffer(3)
    assert len(buffer) == 0, f"a new buffer has len {len(buffer)}"
    for item in ("a", "b", "c"):
        buffer.put(item)
    assert len(buffer) == 3, f"after 3 puts len is {len(buffer)}"
    got = [buffer.get(), buffer.get()]
    assert got == ["a", "b"], f"put a, b, c then get, get gave {got}: a buffer is first in, first out"
    assert len(buffer) == 1, f"3 puts and 2 gets leave len {len(buffer)}, want 1"


@pytest.mark.points(2)
@timing_settings
@given(schedules(max_steps=MAX_STEPS))
def test_put_on_a_full_buffer_raises_queue_full_after_the_timeout(schedule):
    buffer = pipeline.BoundedBuffer(2)

    def fill_then_put_once_more() -> tuple[str, Any, float]:
        buffer.put(1)
        buffer.put(2)
        return timed(buffer.put, 3, timeout=TIMEOUT)

    (outcome,) = schedule.run(fill_then_put_once_more)
    assert_gave_up(f"put(3, timeout={TIMEOUT:g}) on a full buffer of capacity 2", outcome, queue.Full)
    assert len(buffer) == 2, f"a put that timed out changed the buffer: len is {len(buffer)}"
    assert [buffer.get(), buffer.get()] == [1, 2], "a put that timed out changed the contents"


@pytest.mark.points(1)
@timing_settings
@given(schedules(max_steps=MAX_STEPS))
def test_get_on_an_empty_buffer_raises_queue_empty_after_the_timeout(schedule):
    buffer = pipeline.BoundedBuffer(2)
    (outcome,) = schedule.run(lambda: timed(buffer.get, timeout=TIMEOUT))
    assert_gave_up(f"get(timeout={TIMEOUT:g}) on an empty buffer", outcome, queue.Empty)


@pytest.mark.points(2)
def test_a_get_on_an_empty_buffer_sleeps_until_a_put():
    buffer = pipeline.BoundedBuffer(1)
    consumer = Background(buffer.get, name="consumer")
    wait_until_blocked(consumer.thread, "get() on an empty buffer")
    buffer.put("hello")
    assert consumer.outcome("get() after another thread put an item") == "hello"


@pytest.mark.points(2)
def test_a_put_on_a_full_buffer_sleeps_until_a_get():
    buffer = pipeline.BoundedBuffer(1)
    buffer.put("first")
    producer = Background(buffer.put, "second", name="producer")
    wait_until_blocked(producer.thread, "put() on a full buffer")
    assert len(buffer) == 1, f"a put on a full buffer of capacity 1 made len {len(buffer)}"
    assert buffer.get(timeout=PATIENCE) == "first"
    producer.outcome("put() after another thread made room")
    assert buffer.get(timeout=PATIENCE) == "second"


@pytest.mark.points(1)
def test_built_on_condition_not_on_a_queue(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("BoundedBuffer must be built on threading.Condition, not queue.Queue")

    monkeypatch.setattr(queue.Queue, "__init__", forbidden)
    buffer = pipeline.BoundedBuffer(1)
    buffer.put(1)
    assert buffer.get() == 1
    queue_classes = {"Queue", "SimpleQueue", "LifoQueue", "PriorityQueue"}
    made = sorted(
        {node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
         for node in ast.walk(ast.parse(inspect.getsource(pipeline)))
         if isinstance(node, ast.Call)
         and (getattr(node.func, "attr", None) in queue_classes
              or getattr(node.func, "id", None) in queue_classes)}
    )
    assert not made, f"pipeline.py makes a {', '.join(made)}: build the buffer on threading.Condition"


@pytest.mark.points(2)
def test_many_producers_and_consumers_with_real_threads_lose_nothing():
    capacity, n_producers, n_consumers, per_producer = 3, 4, 4, 250
    buffer = pipeline.BoundedBuffer(capacity)
    consumed: list[Any] = []
    overfull: list[int] = []

    def produce(p: int) -> None:
        for i in range(per_producer):
            buffer.put((p, i), timeout=PATIENCE)
            if (size := len(buffer)) > capacity:
                overfull.append(size)

    def consume(n: int) -> None:
        for _ in range(n):
            consumed.append(buffer.get(timeout=PATIENCE))

    share = n_producers * per_producer // n_consumers
    jobs = [Background(produce, p, name=f"producer-{p}") for p in range(n_producers)]
    jobs += [Background(consume, share, name=f"consumer-{c}") for c in range(n_consumers)]
    for job in jobs:
        job.outcome(f"{n_producers} producers and {n_consumers} consumers")
    problem = exactly_once([(p, i) for p in range(n_producers) for i in range(per_producer)], consumed)
    assert problem is None, problem
    assert not overfull, f"a buffer of capacity {capacity} held {max(overfull)} items"


@pytest.mark.points(3)
@given(schedules(max_steps=MAX_STEPS))
def test_capacity_and_exactly_once_in_many_interleavings(schedule):
    capacity = 1
    buffer = pipeline.BoundedBuffer(capacity)
    overfull: list[str] = []

    def producer(name: str) -> None:
        for i in range(2):
            buffer.put(f"{name}{i}")
            if (size := len(buffer)) > capacity:
                overfull.append(f"after {name} put {name}{i} the buffer held {size} items")

    def consumer() -> list[Any]:
        return [buffer.get(), buffer.get()]

    results = schedule.run(
        lambda: producer("a"), lambda: producer("b"), consumer, consumer
    )
    assert not overfull, f"a buffer of capacity {capacity} held more: " + "; ".join(overfull)
    problem = exactly_once(["a0", "a1", "b0", "b1"], results[2] + results[3])
    assert problem is None, problem
    for got in results[2:]:
        for name in "ab":
            mine = [item for item in got if item.startswith(name)]
            assert mine == sorted(mine), f"a consumer got {got}: items of one producer out of order"


@pytest.mark.points(2)
@given(schedules(max_steps=MAX_STEPS))
def test_a_consumer_that_comes_first_waits_without_spinning(schedule):
    buffer = pipeline.BoundedBuffer(1)
    got, _ = schedule.run(buffer.get, lambda: buffer.put("late"))
    assert got == "late", f"get() returned {got!r}"
    # A get() that sleeps on a Condition takes about a hundred steps here; one
    # that spins runs until the scheduler's time slice lets put() in.
    assert schedule.steps < 1000, (
        f"get() and put() took {schedule.steps:,} steps: get() on an empty buffer spins "
        "(busy waiting) instead of sleeping on a Condition until put() notifies it"
    )


# -- run_pipeline ----------------------------------------------------------------------------


@pytest.mark.points(3)
def test_run_pipeline_returns_every_result_exactly_once():
    sources = [range(0, 60), range(100, 140), ["x", "x", "y"], []]
    before = set(threading.enumerate())
    job = Background(pipeline.run_pipeline, sources, lambda item: (item, "done"), 3, 4,
                     name="run_pipeline")
    results = job.outcome("run_pipeline with 4 sources, 3 consumers, capacity 4")
    assert isinstance(results, list), f"run_pipeline returned a {type(results).__name__}, want a list"
    produced = [(item, "done") for source in sources for item in source]
    problem = exactly_once(produced, results)
    assert problem is None, problem
    alive = pipeline_threads_alive(before | {job.thread})
    assert not alive, f"run_pipeline returned with threads still alive: {alive}"


@pytest.mark.points(1)
def test_run_pipeline_with_nothing_to_do_returns_an_empty_list():
    for sources in ([], [[], []]):
        job = Background(pipeline.run_pipeline, sources, str, 2, 1, name="run_pipeline")
        results = job.outcome(f"run_pipeline({sources!r}, ...): the consumers must still be stopped")
        assert list(results) == [], f"run_pipeline({sources!r}, ...) returned {results!r}"


@pytest.mark.points(2)
def test_one_producer_thread_per_source_all_at_once():
    n_sources = 3
    rendezvous = threading.Barrier(n_sources, timeout=PATIENCE)
    problems: list[str] = []
    producers: dict[int, threading.Thread] = {}

    def source(s: int):
        producers[s] = threading.current_thread()
        yield (s, 0)
        try:
            rendezvous.wait()  # every source is half-way at the same time
        except threading.BrokenBarrierError:
            problems.append(f"source {s} waited {PATIENCE} s for the other sources to be iterated")
        yield (s, 1)

    job = Background(pipeline.run_pipeline, [source(s) for s in range(n_sources)], repr, 2, 2,
                     name="run_pipeline")
    results = job.outcome("run_pipeline with 3 sources")
    assert not problems, (
        "the sources were not iterated at the same time: start one producer thread per source\n"
        + "\n".join(problems)
    )
    threads = set(producers.values())
    assert len(threads) == n_sources and job.thread not in threads, (
        f"{n_sources} sources were iterated by {len(threads)} thread(s)"
        + (" including the caller's" if job.thread in threads else "")
        + ": start one producer thread per source"
    )
    problem = exactly_once([repr((s, i)) for s in range(n_sources) for i in range(2)], results)
    assert problem is None, problem


@pytest.mark.points(2)
def test_n_consumers_do_the_work_at_the_same_time():
    n_consumers = 3
    rendezvous = threading.Barrier(n_consumers, timeout=PATIENCE)
    workers: set[threading.Thread] = set()
    problems: list[str] = []
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            workers.add(threading.current_thread())
        try:
            rendezvous.wait()  # item after item, three at a time
        except threading.BrokenBarrierError:
            problems.append(f"item {item}: {n_consumers} items were never worked on at once")
        return item

    job = Background(pipeline.run_pipeline, [range(9)], work, n_consumers, 2, name="run_pipeline")
    results = job.outcome("run_pipeline with 3 consumers")
    assert not problems, (
        f"with n_consumers={n_consumers}, work() never ran in {n_consumers} threads at once\n"
        + "\n".join(problems[:3])
    )
    assert len(workers) == n_consumers and job.thread not in workers, (
        f"work() ran in {len(workers)} threads with n_consumers={n_consumers}: start exactly "
        "n_consumers consumer threads, and let them do all the work"
    )
    assert sorted(results) == list(range(9)), f"results: {sorted(results)}"


@pytest.mark.points(2)
def test_every_consumer_is_stopped_and_no_thread_is_left_behind():
    before = set(threading.enumerate())
    job = Background(pipeline.run_pipeline, [range(10), range(10, 20)], abs, 4, 2,
                     name="run_pipeline")
    job.outcome(
        "run_pipeline with 4 consumers: each consumer needs its own poison pill, "
        "and each must be joined"
    )
    alive = pipeline_threads_alive(before | {job.thread})
    assert not alive, (
        f"run_pipeline returned with threads still alive: {alive}; give every consumer its "
        "own poison pill after all producers finished, and join every thread"
    )


@pytest.mark.points(3)
def test_an_exception_in_work_is_raised_after_the_pipeline_shut_down():
    class Boom(Exception):
        pass

    def work(item: int) -> int:
        if item == 2:
            raise Boom("item 2")
        return item

    before = set(threading.enumerate())

    def call() -> list[str]:
        with pytest.raises(Boom):
            # One consumer and room for one item: if the consumer dies, the
            # producer blocks on a full buffer for ever.
            pipeline.run_pipeline([range(20)], work, 1, 1)
        return pipeline_threads_alive(before | {threading.current_thread()})

    alive = Background(call, name="run_pipeline").outcome(
        "run_pipeline whose work() raised: the consumer must survive the error and "
        "keep consuming, or the producer waits for room for ever"
    )
    assert not alive, f"run_pipeline raised while threads were still alive: {alive}"


@pytest.mark.points(1)
def test_everything_goes_through_one_bounded_buffer_of_the_given_capacity(monkeypatch):
    made: list[Any] = []
    puts = 0
    original = pipeline.BoundedBuffer

    class Spy(original):  # type: ignore[misc, valid-type]
        def __init__(self, capacity: int) -> None:
            super().__init__(capacity)
            made.append(capacity)

        def put(self, item: Any, timeout: float | None = None) -> None:
            nonlocal puts
            super().put(item, timeout)
            puts += 1

    monkeypatch.setattr(pipeline, "BoundedBuffer", Spy)
    results = Background(pipeline.run_pipeline, [range(5), range(5, 8)], abs, 2, 3,
                         name="run_pipeline").outcome("run_pipeline")
    assert sorted(results) == list(range(8)), f"results: {sorted(results)}"
    assert made == [3], (
        f"run_pipeline(capacity=3) made BoundedBuffers of capacities {made}: "
        "make one BoundedBuffer(capacity) and send everything through it"
    )
    assert puts >= 8, f"only {puts} puts into the buffer for 8 items"


@pytest.mark.points(3)
@given(schedules(max_steps=MAX_STEPS))
def test_run_pipeline_delivers_everything_in_many_interleavings(schedule):
    sources = [["a", "b"], ["c"]]
    (results,) = schedule.run(lambda: pipeline.run_pipeline(sources, str.upper, 2, 1))
    problem = exactly_once(["A", "B", "C"], results)
    assert problem is None, problem


# --- linearizability: put, get and len from several threads at once -----------------
# Hypothesis draws small scenarios (2-3 threads of 1-3 calls, a set-up and an after
# part), each runs under a drawn schedule, and every result must be explained by
# some sequential order of the calls: the one a plain list of capacity 2 would give.
CAPACITY = 2


def buffer_model(items: tuple, name: str, *args: Any) -> Any:
    """A sequential bounded buffer: ``(result, new_items)``, or BLOCKS where it waits."""
    if name == "put":
        return (None, items + args) if len(items) < CAPACITY else BLOCKS
    if name == "put(timeout=1)":
        return (None, items + args) if len(items) < CAPACITY else (Raises(queue.Full), items)
    if name == "get":
        return (items[0], items[1:]) if items else BLOCKS
    if name == "get(timeout=1)":
        return (items[0], items[1:]) if items else (Raises(queue.Empty), items)
    return len(items), items  # len


BUFFER_OPERATIONS = [
    Operation("put", lambda buffer, item: buffer.put(item), st.sampled_from("abc")),
    Operation("get", lambda buffer: buffer.get()),
    Operation("len", len),
    Operation("put(timeout=1)", lambda buffer, item: buffer.put(item, timeout=1), st.sampled_from("xy")),
    Operation("get(timeout=1)", lambda buffer: buffer.get(timeout=1)),
]


@pytest.mark.points(3)
@settings(max_examples=300, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(scenarios(BUFFER_OPERATIONS, setup=BUFFER_OPERATIONS[:1]), schedules(max_steps=MAX_STEPS))
def test_put_get_and_len_from_several_threads_are_linearizable(scenario, schedule):
    scenario.check(schedule, lambda: pipeline.BoundedBuffer(CAPACITY), buffer_model, initial=())


@pytest.mark.points(1)
def test_len_during_a_put_and_a_get_is_a_length_the_buffer_had():
    pipeline.BoundedBuffer(CAPACITY).put("a")  # not written yet: fail here, as "not started"

    def scenario(schedule) -> None:
        buffer = pipeline.BoundedBuffer(CAPACITY)

        def put_then_get() -> None:
            buffer.put("a")
            buffer.get()

        # buffer.__len__(), not len(buffer): len() refuses a negative length with its own error.
        seen, _ = schedule.run(buffer.__len__, put_then_get)
        assert seen in (0, 1), (
            f"len() returned {seen} while another thread did one put and then one get: the "
            "buffer only ever held 0 or 1 items. len() must read what it counts under the lock"
        )

    # Small enough to try every interleaving with up to two preemptions: no luck involved.
    result = explore_all(scenario, max_preemptions=2)
    assert result.exhausted, result
