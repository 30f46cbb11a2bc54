"""Wing & Gong's search for a sequential order, with Lowe's memo of visited states.

A history is a list of :class:`Call` s, each with the instant it was invoked
and the instant it returned (or ``None``: it never did).  It is linearizable
when some sequential order of the returned calls

- keeps every call after the calls that returned before it was invoked, and
- gives, call by call, what a sequential model says it gives,

and the model says that every call that never returned would block, at the
end of that order.  The search tries the calls that may go first, one by
one, and backtracks; a ``(calls placed, model state)`` pair seen before
leads nowhere new and is skipped, so a history of a dozen calls checks in
milliseconds.

>>> def register(state, name, *args):
...     return (None, args[0]) if name == "write" else (state, state)
>>> calls = [Call(1, "write", (1,), 0, 3, None), Call(2, "read", (), 1, 2, 1)]
>>> check(calls, register, 0).ok
True
>>> calls[1].value = 2
>>> verdict = check(calls, register, 0)
>>> verdict.ok, [call.shown for call in verdict.order], verdict.reasons
(False, ['write(1)'], ['thread 2: read() returned 2, where a sequential model returns 1'])
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BLOCKS", "Call", "Raises", "Verdict", "check"]


class _Blocks:
    def __repr__(self) -> str:
        return "BLOCKS"


BLOCKS: Any = _Blocks()
"""What a model returns for a call that would wait here (a ``get`` on an empty queue)."""


class Raises:
    """The result of a call that raises: ``Raises(queue.Empty)`` matches any ``queue.Empty``."""

    def __init__(self, *types: type[BaseException]) -> None:
        if not types:
            raise TypeError("Raises() needs at least one exception class")
        self.types = types

    def __repr__(self) -> str:
        return f"Raises({', '.join(t.__name__ for t in self.types)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raises) and other.types == self.types

    def __hash__(self) -> int:
        return hash(self.types)


Model = Callable[..., Any]
"""``model(state, name, *args) -> (result, new_state)``, or :data:`BLOCKS`."""


@dataclass(eq=False)
class Call:
    """One call of a history: who made it, when it was invoked and when it returned."""

    thread: int  # 0: the set-up and after parts; 1, 2, ...: the threads of the scenario
    name: str
    args: tuple[Any, ...]
    start: int
    end: int | None  # None: it never returned
    value: Any = None
    error: BaseException | None = None
    part: str = ""  # "set-up", "after", or "" for a thread's call
    site: str = field(default="", repr=False)  # where the implementation raised, if it did

    @property
    def shown(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"

    @property
    def outcome(self) -> str:
        if self.end is None:
            return "never returned"
        if self.error is not None:
            return f"raised {_exception(self.error)}"
        return f"returned {self.value!r}"

    @property
    def who(self) -> str:
        return self.part if self.thread == 0 else f"thread {self.thread}"


@dataclass
class Verdict:
    """What the search found: ``ok``, or the longest order that explains a prefix and why it stops."""

    ok: bool
    order: list[Call]  # a full linearization, or the longest partial one found
    reasons: list[str]  # why nothing can come next after ``order``
    explored: int  # (calls placed, state) pairs visited


def check(calls: Sequence[Call], model: Model, initial: Hashable) -> Verdict:
    """Search for a sequential order of ``calls`` that ``model``, from ``initial``, explains."""
    returned = [c for c in calls if c.end is not None]
    pending = [c for c in calls if c.end is None]
    everything = (1 << len(returned)) - 1
    seen: set[tuple[int, Any]] = set()
    best: tuple[int, list[Call], list[str]] = (-1, [], [])
    order: list[Call] = []

    def key(placed: int, state: Any) -> tuple[int, Any]:
        try:
            hash(state)
        except TypeError:
            return placed, repr(state)
        return placed, state

    def search(placed: int, state: Any) -> bool:
        nonlocal best
        memo = key(placed, state)
        if memo in seen:
            return False
        seen.add(memo)
        reasons: list[str] = []
        if placed == everything:
            for call in pending:
                step = model(state, call.name, *call.args)
                if step is not BLOCKS:
                    result, _ = step
                    reasons.append(
                        f"{call.who}: {call.shown} never returned, where a sequential model "
                        f"{_would(result)} (it cannot be waiting here)"
                    )
            if not reasons:
                return True
        else:
            # Only a call invoked before every unplaced call has returned may go next.
            first_end = min(c.end for i, c in enumerate(returned) if not placed >> i & 1)  # type: ignore[type-var]
            for i, call in enumerate(returned):
                if placed >> i & 1 or call.start > first_end:  # type: ignore[operator]
                    continue
                step = model(state, call.name, *call.args)
                if step is BLOCKS:
                    reasons.append(f"{call.who}: {call.shown} {call.outcome}, where a sequential model waits")
                    continue
                result, after = step
                if not _matches(result, call):
                    reasons.append(f"{call.who}: {call.shown} {call.outcome}, where a sequential model {_would(result)}")
                    continue
                order.append(call)
                if search(placed | 1 << i, after):
                    return True
                order.pop()
        if len(order) > best[0]:
            best = (len(order), list(order), reasons)
        return False

    ok = search(0, initial)
    if ok:
        return Verdict(True, list(order), [], len(seen))
    return Verdict(False, best[1], best[2], len(seen))


def _matches(expected: Any, call: Call) -> bool:
    if isinstance(expected, Raises):
        return call.error is not None and isinstance(call.error, expected.types)
    if call.error is not None:
        return False
    try:
        return bool(call.value == expected)
    except Exception:  # noqa: BLE001 - a value that cannot be compared does not match
        return False


def _would(result: Any) -> str:
    if isinstance(result, Raises):
        return f"raises {' or '.join(t.__name__ for t in result.types)}"
    return f"returns {result!r}"


def _exception(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}({text!r})" if text else type(error).__name__
