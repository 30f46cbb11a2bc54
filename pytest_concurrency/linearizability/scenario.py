"""Small concurrent scenarios: drawn by Hypothesis, run under a schedule, checked.

>>> from hypothesis import given, strategies as st
>>> from pytest_concurrency import schedules
>>> def register(state, name, *args):
...     return (None, args[0]) if name == "write" else (state, state)
>>> class Cell:
...     value = 0
>>> ops = [Operation("write", lambda c, v: setattr(c, "value", v), st.integers(0, 2)),
...        Operation("read", lambda c: c.value)]
>>> @given(scenarios(ops), schedules())
... def test_cell(scenario, schedule):
...     scenario.check(schedule, Cell, register, initial=0)
>>> test_cell()
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConcurrencyError, DeadlockError
from .checker import Call, Model, check
from .report import format_failure

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from ..scheduler.schedule import Schedule

__all__ = ["NotLinearizable", "Operation", "Scenario", "scenarios"]


class NotLinearizable(AssertionError):
    """No sequential order of a scenario's calls explains what they returned."""


@dataclass(frozen=True)
class Operation:
    """A call a scenario may make: ``call(obj, *args)``, its arguments drawn from ``args``.

    ``name`` is what the history shows and what the model is given.
    """

    name: str
    call: Callable[..., Any]
    args: tuple[SearchStrategy[Any], ...] = ()

    def __init__(self, name: str, call: Callable[..., Any], *args: SearchStrategy[Any]) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "call", call)
        object.__setattr__(self, "args", args)


@dataclass(frozen=True)
class Step:
    """One drawn call: an operation and its arguments."""

    operation: Operation
    args: tuple[Any, ...]

    def __repr__(self) -> str:
        return f"{self.operation.name}({', '.join(map(repr, self.args))})"


@dataclass(frozen=True)
class Scenario:
    """A set-up part, two or three threads of calls, and an after part."""

    setup: tuple[Step, ...]
    threads: tuple[tuple[Step, ...], ...]
    after: tuple[Step, ...]
    history: list[Call] = field(default_factory=list, compare=False, repr=False)
    callers: set[threading.Thread] = field(default_factory=set, compare=False, repr=False)
    """The threads that make the calls (the scenario's own, not the structure's workers)."""

    def __repr__(self) -> str:
        def steps(part: Sequence[Step]) -> str:
            return "[" + ", ".join(map(repr, part)) + "]"

        lanes = " | ".join(steps(t) for t in self.threads)
        text = f"set-up {steps(self.setup)}; threads {lanes}" if self.setup else f"threads {lanes}"
        return f"{text}; after {steps(self.after)}" if self.after else text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def check(
        self,
        schedule: Schedule,
        make: Callable[[], Any],
        model: Model,
        initial: Hashable,
        *,
        cleanup: Callable[[Any], Any] | None = None,
        name: str | None = None,
        starts_threads: bool = False,
    ) -> list[Call]:
        """Run the scenario on ``make()`` under ``schedule``; raise :class:`NotLinearizable`
        unless ``model``, from state ``initial``, explains every result.

        ``make``, the set-up part, the after part and ``cleanup(obj)`` (not checked,
        e.g. a pool's shutdown) run in the test's thread, before and after the
        controlled run of the scenario's threads; with ``starts_threads=True`` (a
        pool whose ``make()`` starts workers) in one more controlled thread.
        ``name`` is what the failure calls the structure (by default the class of
        ``make()``).  Returns the history.
        """
        __tracebackhide__ = True
        from ..scheduler import _novelty
        from ..scheduler.schedule import Schedule

        if _novelty.counting():
            # The same interleaving of other calls is a new example: tell the counting so.
            _novelty.ran(repr(self))
        history = self.history
        history.clear()
        self.callers.clear()
        self.callers.add(threading.current_thread())
        clock = itertools.count()
        ready = threading.Event()
        finished = threading.Event()
        left = [len(self.threads)]
        count_lock = threading.Lock()
        made: list[Any] = []

        def call(thread: int, part: str, step: Step) -> None:
            record = Call(thread, step.operation.name, step.args, next(clock), None, part=part)
            history.append(record)
            try:
                record.value = step.operation.call(made[0], *step.args)
            except (ConcurrencyError, NotImplementedError):
                raise  # not a result: a stub, or the scheduler's verdict
            except Exception as error:  # noqa: BLE001 - a result like any other, for the model to judge
                record.error = error
                record.site = _raised_at(error)
            record.end = next(clock)

        def set_up() -> None:
            for step in self.setup:
                call(0, "set-up", step)

        def after() -> None:
            for step in self.after:
                call(0, "after", step)
            if cleanup is not None:
                cleanup(made[0])

        def main() -> None:
            self.callers.add(threading.current_thread())
            made.append(make())
            set_up()
            ready.set()
            finished.wait()
            after()

        def lane(thread: int, steps: tuple[Step, ...]) -> Callable[[], None]:
            def run() -> None:
                self.callers.add(threading.current_thread())
                if not starts_threads:
                    for step in steps:
                        call(thread, "", step)
                    return
                ready.wait()
                for step in steps:
                    call(thread, "", step)
                with count_lock:
                    left[0] -= 1
                    if not left[0]:
                        finished.set()

            return run

        deadlock: DeadlockError | None = None
        lanes = [lane(i, steps) for i, steps in enumerate(self.threads, 1)]
        try:
            if starts_threads:
                schedule.run(main, *lanes)
            else:
                # make() outside the controlled run of the lanes, so that every preemption
                # lands in a lane; the set-up and after parts in runs of their own, one
                # thread each, where a call that would wait for ever is seen as such.
                made.append(make())
                if self.setup:
                    try:
                        Schedule().run(set_up)
                    except DeadlockError:
                        from hypothesis import reject

                        reject()  # a set-up call waits for ever: not a scenario worth running
                ready.set()
                schedule.run(*lanes)
        except DeadlockError as error:
            deadlock = error
        if not starts_threads and deadlock is None and (self.after or cleanup is not None):
            try:
                Schedule().run(after)
            except DeadlockError as error:
                deadlock = error  # an after call that waits for ever: the model says whether it may
        if not made:
            return history
        verdict = check(history, model, initial)
        pending = [c for c in history if c.end is None]
        if verdict.ok and (deadlock is None or pending):
            return history
        failure = NotLinearizable(format_failure(self, history, verdict, made[0], deadlock, name))
        failure.deadlock = deadlock  # type: ignore[attr-defined]  # (the plugin notes it shown)
        raise failure


def scenarios(
    operations: Sequence[Operation],
    *,
    threads: tuple[int, int] = (2, 3),
    calls: tuple[int, int] = (1, 3),
    setup: Sequence[Operation] | None = None,
    max_setup: int = 2,
    after: Sequence[Operation] | None = None,
    max_after: int = 2,
    final: Sequence[Operation] = (),
) -> SearchStrategy[Scenario]:
    """A Hypothesis strategy of :class:`Scenario` s: ``threads`` (fewest, most) threads of
    ``calls`` (fewest, most) calls each, drawn from ``operations``; up to ``max_setup``
    calls before them and ``max_after`` after them (from ``setup`` and ``after``,
    by default the same operations), then one call of each of ``final`` (an
    observer such as ``balances``, so that a lost update always shows).
    Shrinks to fewer threads and calls.
    """
    from hypothesis import strategies as st

    if not operations:
        raise ValueError("scenarios() needs at least one Operation")
    if not 1 <= threads[0] <= threads[1] or not 1 <= calls[0] <= calls[1]:
        raise ValueError(f"scenarios(): threads={threads} and calls={calls} must be (fewest, most), at least 1")

    def steps_of(operation: Operation) -> SearchStrategy[Step]:
        return st.tuples(*operation.args).map(lambda args: Step(operation, args))

    def steps(ops: Sequence[Operation]) -> SearchStrategy[Step] | None:
        if not ops:
            return None

        @st.composite
        def one(draw: Any) -> Step:
            operation = draw(st.sampled_from(list(ops)))
            return Step(operation, tuple(draw(arg) for arg in operation.args))

        return one()

    in_threads = steps(operations)
    assert in_threads is not None
    before = steps(setup if setup is not None else operations) if setup != () else None
    behind = steps(after if after is not None else operations) if after != () else None

    @st.composite
    def scenario(draw: Any) -> Scenario:
        n = draw(st.integers(*threads))
        lanes = tuple(tuple(draw(st.lists(in_threads, min_size=calls[0], max_size=calls[1]))) for _ in range(n))
        first = tuple(draw(st.lists(before, max_size=max_setup))) if max_setup and before is not None else ()
        last = tuple(draw(st.lists(behind, max_size=max_after))) if max_after and behind is not None else ()
        last += tuple(draw(st.tuples(*(steps_of(op) for op in final))))
        return Scenario(first, lanes, last)

    return scenario()


def _raised_at(error: BaseException) -> str:
    from .._frames import is_plugin_file, is_test_file, is_user_file, where

    site = ""
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if is_user_file(filename) and not is_test_file(filename) and not is_plugin_file(filename):
            site = where(filename, tb.tb_lineno)
        tb = tb.tb_next
    return site
