"""Benchmark of the linearizability checker (not a test: it prints a table).

    python benchmarks/bench_linearizability.py            # 300 scenarios per structure
    python benchmarks/bench_linearizability.py --examples 1000

For each structure (queue.Queue, and the solutions of 04-09 through their exercise
tests' operations and models): the time per scenario of the whole check (draw, run
under the schedule, check), the part spent in the search for a sequential order,
and their ratio; then the worst history of 9 calls (3 threads of 3 overlapping
calls, every one of them concurrent with every other) that the search can meet.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def load_test_module(exercise: str, name: str) -> Any:
    """An exercise's graded test module, against the solutions."""
    from pytest_concurrency import impl

    impl._impl_root = ROOT / "solutions"  # what --impl solutions sets in a pytest session
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "exercises" / exercise / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(label: str, operations: list, make: Any, model: Any, initial: Any, examples: int, **check: Any) -> None:
    from hypothesis import given, settings

    from pytest_concurrency import scenarios, schedules
    from pytest_concurrency.linearizability import scenario as scenario_module

    searching: list[float] = []
    whole: list[float] = []
    original = scenario_module.check

    def timed_check(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            searching.append(time.perf_counter() - start)

    scenario_module.check = timed_check  # type: ignore[assignment]
    try:

        @settings(max_examples=examples, derandomize=True, database=None, deadline=None)
        @given(scenarios(operations, **check.pop("draw", {})), schedules())
        def run(scenario: Any, schedule: Any) -> None:
            start = time.perf_counter()
            scenario.check(schedule, make, model, initial, **check)
            whole.append(time.perf_counter() - start)

        run()
    finally:
        scenario_module.check = original  # type: ignore[assignment]
    ratio = sum(searching) / sum(whole)
    print(
        f"{label:34} {len(whole):6} {statistics.mean(whole) * 1e3:9.2f} ms"
        f" {statistics.mean(searching) * 1e3:9.3f} ms {max(searching) * 1e3:9.3f} ms {ratio:7.1%}"
    )


def worst_nine() -> None:
    """3 threads x 3 calls, all overlapping: the search's largest frontier for a queue."""
    import queue

    from pytest_concurrency.linearizability import BLOCKS, Call, check

    def model(state: tuple, name: str, *args: Any) -> Any:
        if name == "put":
            return None, state + args
        return (state[0], state[1:]) if state else BLOCKS

    # Each thread's calls one after another, as in any real history; every call
    # overlapping every call of the other threads that it can.
    calls = [Call(t, "put", (f"{t}{k}",), 10 * k + t, 10 * k + 10 + t) for t in (1, 2, 3) for k in range(3)]
    start = time.perf_counter()
    verdict = check(calls, model, ())
    ok_time = time.perf_counter() - start
    # The same, with one impossible observation at the end: the whole space is searched.
    calls.append(Call(1, "get", (), 200, 201, value=99))
    start = time.perf_counter()
    bad = check(calls, model, ())
    bad_time = time.perf_counter() - start
    print(
        f"9 overlapping puts: {ok_time * 1e3:.2f} ms (linearizable: {verdict.ok}); with an impossible"
        f" get after them: {bad_time * 1e3:.1f} ms, {bad.explored} states (linearizable: {bad.ok})"
    )
    del queue


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=300)
    examples = parser.parse_args().examples
    import queue

    sys.path.insert(0, str(ROOT / "tests"))
    smoke = load_test_module_or_none("tests", "test_linearizability")
    print(f"{'structure':34} {'runs':>6} {'per scenario':>12} {'search':>12} {'worst':>12} {'share':>7}")
    measure("queue.Queue", smoke.QUEUE_OPERATIONS, queue.Queue, smoke.queue_model, (), examples)
    gate = load_test_module("04_event", "test_gate")
    measure("04 CountDownLatch", gate.LATCH_OPERATIONS, lambda: gate.gate.CountDownLatch(gate.START), gate.latch_model,
            gate.START, examples, draw={"setup": gate.LATCH_OPERATIONS[:1], "max_setup": 1})
    measure("04 StartingGate", gate.GATE_OPERATIONS, gate.gate.StartingGate, gate.gate_model, False, examples,
            draw={"max_setup": 0})
    watch = load_test_module("05_condition", "test_barrier")
    measure("05 ValueWatch", watch.WATCH_OPERATIONS, lambda: watch.barrier.ValueWatch(0), watch.watch_model, 0, examples,
            draw={"setup": watch.WATCH_OPERATIONS[:1], "max_setup": 1})
    bank = load_test_module("06_locks", "test_bank")
    measure("06 Bank (transfers, totals)", bank.MONEY_MOVED, bank.Branch, bank.bank_model, bank.OPENING, examples,
            draw={"setup": (), "after": (), "final": [bank.BALANCES]})
    pool = load_test_module("07_thread_pool", "test_thread_pool")
    measure("07 ThreadPool", pool.POOL_OPERATIONS, lambda: pool.Watched(set()), pool.pool_model, False, examples,
            draw={"setup": ()}, cleanup=lambda w: w.pool.shutdown(), starts_threads=True)
    queues = load_test_module("08_queues", "test_queues")
    measure("08 PriorityScheduler", queues.SCHEDULER_OPERATIONS, queues.queues.PriorityScheduler,
            queues.scheduler_model, (0, ()), examples)
    pipeline = load_test_module("09_producer_consumer", "test_pipeline")
    measure("09 BoundedBuffer", pipeline.BUFFER_OPERATIONS, lambda: pipeline.pipeline.BoundedBuffer(2),
            pipeline.buffer_model, (), examples)
    worst_nine()


def load_test_module_or_none(folder: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
