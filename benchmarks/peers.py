"""Adapters that run the bug corpus's ``scenario(schedule)`` under each tool.

A corpus entry calls ``schedule.run(*callables)`` and then checks what the
threads left behind.  Each tool here gets the same scenario and the same
budget (a number of schedules and a number of seconds) and answers one
:class:`Outcome`: whether a failing schedule was found, after how many
schedules and seconds.  ``search(tool, scenario, ...)`` is the one entry
point; ``TOOLS`` names every tool, ``available()`` those installed here.

- ``schedules``: this kit's Hypothesis strategy;
- ``interleave-pct`` and ``interleave-random``: interleave-test's PCT and
  uniform random strategies (``explore`` with a model that spawns the
  scenario's callables as its own threads);
- ``frontrun-dpor`` and ``frontrun-random``: frontrun's ``explore``, whose
  shape is ``setup() -> state``, ``workers``, ``invariant(state)``.  The
  scenario is run up to its ``schedule.run`` in a helper thread during
  ``setup``; the callables it handed over are the workers; ``invariant``
  lets the helper go on with the scenario's own checks.
"""

from __future__ import annotations

import _thread
import contextlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Scenario = Callable[[Any], object]

TOOLS = ("schedules", "interleave-pct", "interleave-random", "frontrun-dpor", "frontrun-random")
_NEEDS = {
    "schedules": "hypothesis",
    "interleave-pct": "interleave_test",
    "interleave-random": "interleave_test",
    "frontrun-dpor": "frontrun",
    "frontrun-random": "frontrun",
}


@dataclass
class Outcome:
    found: bool
    schedules: int
    seconds: float
    detail: str = ""


def available() -> list[str]:
    return [tool for tool in TOOLS if importlib.util.find_spec(_NEEDS[tool]) is not None]


def search(tool: str, scenario: Scenario, *, budget: int, seconds: float, seed: int = 0) -> Outcome:
    """Look for a failing schedule of ``scenario`` with ``tool``, within the budget."""
    runners: dict[str, Callable[..., Outcome]] = {
        "schedules": _ours,
        "interleave-pct": lambda *a, **k: _interleave("pct", *a, **k),
        "interleave-random": lambda *a, **k: _interleave("random", *a, **k),
        "frontrun-dpor": lambda *a, **k: _frontrun("dpor", *a, **k),
        "frontrun-random": lambda *a, **k: _frontrun("random", *a, **k),
    }
    return runners[tool](scenario, budget=budget, seconds=seconds, seed=seed)


class _OutOfTime(Exception):
    pass


def _ours(scenario: Scenario, *, budget: int, seconds: float, seed: int) -> Outcome:
    from hypothesis import Phase, given, settings
    from hypothesis import seed as with_seed

    from pytest_concurrency import schedules
    from pytest_concurrency.scheduler._novelty import count_new_interleavings_only
    from pytest_concurrency.scheduler._patching import uninstall

    count = 0
    started = time.perf_counter()

    @settings(max_examples=budget, database=None, deadline=None, phases=[Phase.generate])
    @given(schedules())
    def run(schedule: Any) -> None:
        nonlocal count
        if time.perf_counter() - started > seconds or count == budget:
            raise _OutOfTime
        count += 1
        scenario(schedule)

    # As under pytest, a run that repeats an interleaving is not an example; the
    # budget is still in runs, as for every other tool.
    run.hypothesis.inner_test = count_new_interleavings_only(run.hypothesis.inner_test)
    try:
        with_seed(seed)(run)()
    except _OutOfTime:
        if count < budget:
            return Outcome(False, count, time.perf_counter() - started, "out of time")
    except BaseException as error:  # noqa: BLE001 - any other failure is the bug showing
        return Outcome(True, count, time.perf_counter() - started, type(error).__name__)
    finally:
        uninstall()
    return Outcome(False, count, time.perf_counter() - started)


class InterleaveSchedule:
    """``schedule.run`` for interleave-test: each callable a spawned, controlled thread."""

    def run(self, *callables: Callable[[], Any]) -> list[Any]:
        import interleave_test as it

        tasks = [it.spawn(fn) for fn in callables]
        for task in tasks:
            task.join()
        return [task.result() for task in tasks]


def _interleave(kind: str, scenario: Scenario, *, budget: int, seconds: float, seed: int) -> Outcome:
    import interleave_test as it

    base = it.PCTStrategy if kind == "pct" else it.RandomStrategy
    started = time.perf_counter()

    class Timed(base):  # type: ignore[misc, valid-type]
        def more(self) -> bool | None:
            if time.perf_counter() - started > seconds:
                return False
            return super().more()

    result = it.explore(
        lambda: scenario(InterleaveSchedule()),
        iterations=budget,
        seed=seed,
        strategy=Timed(),
        timeout=seconds,
        raise_on_failure=False,
    )
    elapsed = time.perf_counter() - started
    if result.failure is None:
        return Outcome(False, result.schedules_run, elapsed, "out of time" if elapsed > seconds else "")
    return Outcome(True, result.schedules_run, elapsed, result.failure.kind)


class _Captured:
    """One run of a scenario for frontrun: its callables, then its checks, in a helper thread."""

    def __init__(self, scenario: Scenario) -> None:
        self.callables: tuple[Callable[[], Any], ...] = ()
        self.results: list[Any] = []
        self.errors: list[BaseException] = []
        self.failure: BaseException | None = None
        self._handed = _thread.allocate_lock()
        self._go_on = _thread.allocate_lock()
        self._finished = _thread.allocate_lock()
        self._handed.acquire()
        self._go_on.acquire()
        self._finished.acquire()
        _thread.start_new_thread(self._scenario, (scenario,))
        self._handed.acquire()

    def run(self, *callables: Callable[[], Any]) -> list[Any]:
        self.callables = callables
        self.results = [None] * len(callables)
        self._handed.release()
        self._go_on.acquire()
        if self.errors:
            raise self.errors[0]
        return self.results

    def _scenario(self, scenario: Scenario) -> None:
        try:
            scenario(self)
        except BaseException as error:  # noqa: BLE001 - reported by check()
            self.failure = error
        finally:
            if not self.callables:
                self._handed.release()
            self._finished.release()

    def worker(self, i: int) -> Callable[[], None]:
        def work() -> None:
            try:
                self.results[i] = self.callables[i]()
            except Exception as error:  # noqa: BLE001 - the scenario's run() raises it
                self.errors.append(error)

        return work

    def check(self) -> bool:
        self._go_on.release()
        self._finished.acquire()
        return self.failure is None


class _Probe:
    """How many callables a scenario runs, without running them."""

    class Stop(Exception):
        pass

    def __init__(self) -> None:
        self.count = 0

    def run(self, *callables: Callable[[], Any]) -> list[Any]:
        self.count = len(callables)
        raise self.Stop


def _frontrun(kind: str, scenario: Scenario, *, budget: int, seconds: float, seed: int) -> Outcome:
    import frontrun

    probe = _Probe()
    with contextlib.suppress(_Probe.Stop):
        scenario(probe)
    workers = [(lambda state, i=i: state.worker(i)()) for i in range(probe.count)]
    options: dict[str, Any] = {"total_timeout": seconds, "deadlock_timeout": 1.0}
    if kind == "dpor":
        options.update(max_executions=budget, preemption_bound=None)
    else:
        options.update(max_attempts=budget, seed=seed, max_ops=5000)
    started = time.perf_counter()
    result = frontrun.explore(
        setup=lambda: _Captured(scenario),
        workers=workers,
        invariant=lambda state: state.check(),
        strategy=kind,
        reproduce_on_failure=0,
        **options,
    )
    elapsed = time.perf_counter() - started
    explored = int(getattr(result, "num_explored", 0) or 0)
    if result.property_holds is False:
        return Outcome(True, explored, elapsed, "invariant")
    if result.property_holds is None:
        reason = getattr(result, "inconclusive_reason", "") or "inconclusive"
        return Outcome(False, explored, elapsed, f"inconclusive: {reason}")
    return Outcome(False, explored, elapsed, "out of time" if elapsed > seconds else "")


def _nothing_to_find(schedule: Any) -> None:
    seen: list[int] = []
    schedule.run(lambda: seen.append(1), lambda: seen.append(2))
    assert sorted(seen) == [1, 2]


def child(argv: list[str]) -> None:
    """``peers.py TOOL BUG KIND BUDGET SECONDS``: one search, its Outcome as JSON on the last line."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import scheduler_corpus

    tool, name, kind, budget, seconds = argv
    scenario = getattr(scheduler_corpus.load(name), kind)
    # Every tool first searches a scenario with nothing to find, untimed: what a
    # tool sets up on its first call in a process (Hypothesis's first example
    # registers its PRNG and collects garbage, about 6 ms) is paid once per test
    # session, not per search.  The times are of the search itself.
    search(tool, _nothing_to_find, budget=5, seconds=float(seconds))
    outcome = search(tool, scenario, budget=int(budget), seconds=float(seconds))
    print(json.dumps(outcome.__dict__), flush=True)


if __name__ == "__main__":
    import os
    import sys

    child(sys.argv[1:])
    sys.stdout.flush()
    os._exit(0)  # a peer's leftover thread must not keep the process alive
