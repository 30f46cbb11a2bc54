"""The failure a student reads: the scenario, the history as lanes, and why no order fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .checker import Call, Verdict

if TYPE_CHECKING:
    from ..errors import DeadlockError
    from .scenario import Scenario

__all__ = ["format_failure", "lanes"]

_WIDTH = 30  # a column's width, at most


def format_failure(
    scenario: Scenario, history: Sequence[Call], verdict: Verdict, obj: Any, deadlock: DeadlockError | None,
    name: str | None = None,
) -> str:
    name = name or type(obj).__name__
    lines = [f"{name} is not linearizable: no sequential order of these calls explains their results."]
    if verdict.ok and deadlock is not None:
        lines[0] = f"{name}: the threads of this scenario deadlocked, with no call left waiting."
    lines += ["", f"Scenario: {scenario!r}", "", lanes(history), ""]
    if not verdict.ok:
        if verdict.order:
            placed = ", ".join(f"{c.shown} {_short(c)}" for c in verdict.order)
            lines.append(f"The longest order that explains the results: {placed}.")
            lines.append("Nothing can come next:")
        else:
            lines.append("No call can come first:")
        lines += [f"  - {reason}" for reason in verdict.reasons]
    sites = sorted({c.site for c in history if c.site})
    methods = sorted(filter(None, {_method_site(obj, c.name) for c in history}))
    if sites:
        lines.append(f"Raised at: {', '.join(sites)}.")
    if methods:
        lines.append(f"Look at: {', '.join(methods)}.")
    if deadlock is not None:
        lines += ["", str(deadlock)]
    return "\n".join(lines)


def lanes(history: Sequence[Call]) -> str:
    """The history, one column per thread, one row per invocation or response, in time order.

    >>> calls = [Call(1, "put", (1,), 0, 3), Call(2, "get", (), 1, 2, value=1)]
    >>> print(lanes(calls))
         | thread 1    | thread 2
       1 | put(1) ...  |
       2 |             | get() -> 1
       3 | ... -> None |
    """
    threads = sorted({c.thread for c in history})
    titles = ["main" if t == 0 else f"thread {t}" for t in threads]
    events: list[tuple[int, Call, str]] = []
    for call in history:
        if call.end is not None and call.end == call.start + 1:
            events.append((call.start, call, f"{call.shown} {_short(call)}"))
            continue
        events.append((call.start, call, f"{call.shown} ..."))
        events.append((call.end if call.end is not None else 1 << 60, call, f"... {_short(call)}"))
    events.sort(key=lambda e: e[0])
    rows = [[""] * len(threads) for _ in events]
    for row, (_, call, text) in zip(rows, events, strict=True):
        row[threads.index(call.thread)] = text
    widths = [min(_WIDTH, max(len(t) for t in [title, *(r[i] for r in rows)])) for i, title in enumerate(titles)]
    out = ["     | " + " | ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip()]
    for n, row in enumerate(rows, 1):
        cells = " | ".join(_fit(cell, w) for cell, w in zip(row, widths, strict=True))
        out.append(f"{n:4} | {cells}".rstrip())
    return "\n".join(out)


def _short(call: Call) -> str:
    if call.end is None:
        return "never returned"
    if call.error is not None:
        return f"raised {type(call.error).__name__}"
    return f"-> {call.value!r}"


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _method_site(obj: Any, name: str) -> str:
    from .._frames import is_user_file, where

    owner = type(obj)
    method = getattr(owner, name, None) or getattr(owner, f"__{name}__", None)
    code = getattr(getattr(method, "__func__", method), "__code__", None)
    if code is None or not is_user_file(code.co_filename):
        return ""
    return f"{owner.__name__}.{getattr(method, '__name__', name)} ({where(code.co_filename, code.co_firstlineno)})"
