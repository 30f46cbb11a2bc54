"""Graded tests of exercise 07: the thread pool."""

from __future__ import annotations

import concurrent.futures
import inspect
import threading
import time
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_concurrency import Operation, Raises, load_impl, scenarios, schedules
from pytest_concurrency.testing import THREAD_PATIENCE as PATIENCE

thread_pool = load_impl("thread_pool")

# A controlled run of these tests takes a few thousand steps: far more means spinning.
MAX_STEPS = 50_000


def run_tasks_recording_threads(pool, n_tasks: int) -> set[threading.Thread]:
    seen: set[threading.Thread] = set()
    lock = threading.Lock()

    def task(i):
        with lock:
            seen.add(threading.current_thread())
        return i

    assert pool.map(task, range(n_tasks)) == list(range(n_tasks))
    return seen


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -3])
def test_max_workers_below_one_is_a_value_error(bad):
    with pytest.raises(ValueError):
        thread_pool.ThreadPool(bad)


@pytest.mark.points(2)
def test_submit_returns_a_future_with_the_result():
    with thread_pool.ThreadPool(2) as pool:
        future = pool.submit(pow, 2, exp=10)
        assert isinstance(future, concurrent.futures.Future), (
            f"submit must return a concurrent.futures.Future, got {type(future).__name__}"
        )
        assert future.result(timeout=PATIENCE) == 1024


@pytest.mark.points(2)
def test_map_returns_results_in_input_order_even_when_tasks_finish_out_of_order():
    # Task i waits until task i+1 has finished: they finish in reverse order.
    n = 4
    finished = [threading.Event() for _ in range(n + 1)]
    finished[n].set()

    def task(i):
        if not finished[i + 1].wait(PATIENCE):
            raise AssertionError(f"task {i + 1} never finished while task {i} waited for it")
        finished[i].set()
        return i * 10

    with thread_pool.ThreadPool(n) as pool:
        assert pool.map(task, range(n)) == [0, 10, 20, 30]


@pytest.mark.points(3)
def test_never_more_than_max_workers_threads_and_they_are_reused():
    before = set(threading.enumerate())
    with thread_pool.ThreadPool(3) as pool:
        workers = run_tasks_recording_threads(pool, 60)
        extra = set(threading.enumerate()) - before
    assert len(workers) <= 3, (
        f"60 tasks ran in {len(workers)} different threads with max_workers=3: "
        "workers must be reused, not one thread per task"
    )
    assert len(extra) <= 3, f"the pool had {len(extra)} threads alive with max_workers=3"


@pytest.mark.points(3)
def test_up_to_max_workers_tasks_really_run_at_the_same_time():
    n = 4
    rendezvous = threading.Barrier(n, timeout=PATIENCE)

    def task(i):
        try:
            rendezvous.wait()
        except threading.BrokenBarrierError:
            raise AssertionError(
                f"{n} tasks never ran at the same time in a pool of {n} workers"
            ) from None
        return i

    with thread_pool.ThreadPool(n) as pool:
        assert pool.map(task, range(n)) == list(range(n))


@pytest.mark.points(2)
def test_an_exception_in_a_task_is_raised_by_result_and_by_map():
    class Boom(Exception):
        pass

    def task(i):
        if i == 2:
            raise Boom(f"task {i}")
        return i

    with thread_pool.ThreadPool(2) as pool:
        future = pool.submit(task, 2)
        with pytest.raises(Boom, match="task 2"):
            future.result(timeout=PATIENCE)
        with pytest.raises(Boom, match="task 2"):
            pool.map(task, range(4))
        # The worker that ran the failing task is still there for the next one.
        assert pool.submit(task, 5).result(timeout=PATIENCE) == 5


@pytest.mark.points(2)
def test_submit_after_shutdown_is_a_runtime_error():
    pool = thread_pool.ThreadPool(2)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print, "too late")


@pytest.mark.points(3)
@settings(max_examples=25)
@given(schedules(max_steps=MAX_STEPS))
def test_shutdown_waits_for_every_task_and_every_worker(schedule):
    n_tasks, work = 6, 1.0
    done: list[int] = []  # list.append is atomic
    workers: set[threading.Thread] = set()

    def task(i: int) -> None:
        workers.add(threading.current_thread())
        time.sleep(work)  # virtual: each task takes a second
        done.append(i)

    def submit_then_shut_down() -> tuple[float, int, list[str]]:
        start = time.monotonic()
        pool = thread_pool.ThreadPool(2)
        for i in range(n_tasks):
            pool.submit(task, i)
        # Shut down while tasks are still queued: they must all still run.
        pool.shutdown(wait=True)
        alive = sorted(w.name for w in workers if w.is_alive())
        return time.monotonic() - start, len(done), alive

    ((took, finished, alive),) = schedule.run(submit_then_shut_down)
    assert finished == n_tasks, (
        f"shutdown(wait=True) returned at t={took:g} s (virtual) after {finished} of {n_tasks} "
        f"submitted tasks ran (each takes {work:g} s): it must wait for every queued task"
    )
    assert not alive, (
        f"shutdown(wait=True) returned with worker threads still alive: {alive}: "
        "give every worker its own stop signal and join them all"
    )


@pytest.mark.points(2)
def test_with_block_shuts_the_pool_down():
    with thread_pool.ThreadPool(2) as pool:
        assert isinstance(pool, thread_pool.ThreadPool), "__enter__ must return the pool"
        workers = run_tasks_recording_threads(pool, 6)
    alive = [w.name for w in workers if w.is_alive()]
    assert not alive, f"leaving the with block left worker threads alive: {alive}"
    with pytest.raises(RuntimeError):
        pool.submit(print)


@pytest.mark.points(1)
def test_written_with_threading_and_queue_not_thread_pool_executor(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("ThreadPool must not use concurrent.futures.ThreadPoolExecutor")

    monkeypatch.setattr(concurrent.futures.ThreadPoolExecutor, "__init__", forbidden)
    with thread_pool.ThreadPool(2) as pool:
        assert pool.submit(len, "abc").result(timeout=PATIENCE) == 3
    source = inspect.getsource(thread_pool)
    assert "ThreadPoolExecutor" not in source, (
        "thread_pool.py mentions ThreadPoolExecutor: build the pool with threading and queue"
    )


# -- linearizability: submit, map and shutdown from several threads at once ------------------
# Hypothesis draws small scenarios (2-3 threads of 1-3 calls, a set-up and an after part),
# each runs under a drawn schedule, and every result must be explained by some sequential
# order of the calls: a submit or map before the shutdown gives its results (every
# accepted task runs), one after it raises RuntimeError. And never more than max_workers
# worker threads are alive, whatever the interleaving.
POOL_SIZE = 1


class Watched:
    """A pool, and the most threads it had alive at once (seen by its tasks and callers)."""

    def __init__(self, callers: set[threading.Thread]) -> None:
        self.before = set(threading.enumerate())
        self.callers = callers  # the scenario's threads, not the pool's
        self.pool = thread_pool.ThreadPool(POOL_SIZE)
        self.most: list[str] = []

    def look(self, value: Any) -> Any:
        extra = sorted(t.name for t in set(threading.enumerate()) - self.before - self.callers)
        if len(extra) > len(self.most):
            self.most = extra
        return value


def pool_model(shut_down: bool, name: str, *args: Any) -> Any:
    """One caller at a time: ``(result, shut_down)``."""
    if name == "shutdown":
        return None, True
    if shut_down:
        return Raises(RuntimeError), True
    return (args[0] if name == "submit" else [args[0], args[0] + 1]), False


POOL_OPERATIONS = [
    Operation("submit", lambda w, x: w.look(w.pool.submit(w.look, x).result()), st.sampled_from([1, 2])),
    Operation("map", lambda w, x: w.look(w.pool.map(w.look, [x, x + 1])), st.sampled_from([10, 20])),
    Operation("shutdown", lambda w: w.pool.shutdown()),
]


@pytest.mark.points(3)
@settings(max_examples=250, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(scenarios(POOL_OPERATIONS, setup=()), schedules(max_steps=MAX_STEPS))
def test_submit_map_and_shutdown_from_several_threads_are_linearizable(scenario, schedule):
    watched: list[Watched] = []

    def make() -> Watched:
        watched.append(Watched(scenario.callers))
        return watched[0]

    scenario.check(
        schedule, make, pool_model, initial=False, name="ThreadPool",
        cleanup=lambda w: w.pool.shutdown(), starts_threads=True,
    )
    most = watched[0].most
    assert len(most) <= POOL_SIZE, (
        f"ThreadPool({POOL_SIZE}) had {len(most)} threads alive at once: {most}. Scenario: {scenario}. "
        "Check and change the pool's bookkeeping (idle workers, list of workers) under its lock"
    )
