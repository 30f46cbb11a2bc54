"""The interleaving as a picture: lanes in the terminal, an SVG timeline in an HTML page.

A run becomes a :class:`Timeline`: the threads, the steps (a line of source
run by one thread without a switch, as in the story), the switches between
threads, the locks each thread held over which steps, and the failing step
(the last one).  :func:`lanes` draws it for a terminal of 100 columns, one
column per thread; :func:`html_page` as a self-contained page (no script, no
outside resource) with one SVG lane per thread::

    T1 (incr)                         T2 (incr)
    counter.py:8  n = self.n          .
    ~~~~ T1 is preempted; T2 runs ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
    .                                 counter.py:8  n = self.n
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from types import CodeType
from typing import TYPE_CHECKING, Any

from .._frames import source_line, where
from ._report import line_of

if TYPE_CHECKING:
    from ._engine import Scheduler

WIDTH = 100
_HOLDING = ("Lock.acquire", "RLock.acquire", "Semaphore.acquire", "BoundedSemaphore.acquire")


@dataclass
class Step:
    thread: int
    where: str  # "bank.py:73", or "" for a synchronisation call alone
    source: str
    calls: list[str] = field(default_factory=list)  # synchronisation calls made on the line


@dataclass(frozen=True)
class Switch:
    after: int  # the index of the step after which it happens
    before: int  # the thread that stops
    to: int  # the thread that runs
    reason: str  # "preempted", "blocked", "time slice", ...

    def text(self, names: list[str]) -> str:
        verb = {"preempted": "is preempted", "blocked": "blocks", "time slice": "used its time slice"}
        return f"{names[self.before]} {verb.get(self.reason, self.reason)}; {names[self.to]} runs"


@dataclass(frozen=True)
class Hold:
    thread: int
    lock: str  # the kind of lock and the line that took it
    start: int  # first step it is held over
    end: int  # last step it is held over


@dataclass
class Timeline:
    threads: list[str]
    steps: list[Step]
    switches: list[Switch]
    holds: list[Hold]

    @property
    def failing(self) -> int | None:
        """The failing step: where the run stopped (the last step)."""
        return len(self.steps) - 1 if self.steps else None

    @property
    def preemptions(self) -> list[Switch]:
        return [s for s in self.switches if s.reason != "blocked"]


def timeline_of(scheduler: Scheduler, length: int | None = None) -> Timeline:
    """The steps, switches and lock holds of the scheduler's last run (its first ``length`` steps)."""
    names = [t.name for t in scheduler.threads]
    switch_at: dict[int, tuple[int, int, str]] = {}
    for step, before, after, reason, _waited in scheduler.switches:
        switch_at.setdefault(step, (before, after, reason))
    steps: list[Step] = []
    switches: list[Switch] = []
    events: list[tuple[int, int, str | None]] = []
    key: Any = None
    last_line_of: dict[int, tuple[CodeType, int | None]] = {}
    trace = scheduler.trace if length is None else scheduler.trace[:length]
    for number, (thread, code, offset, _detail) in enumerate(trace, start=1):
        if code is None:
            if key is None or key[0] != thread:
                steps.append(Step(thread, "", ""))
                key = (thread, None, None)
            steps[-1].calls.append(str(offset))
            events.append((len(steps) - 1, thread, str(offset)))
        else:
            line = line_of(code, offset)
            if line is None:
                code, line = last_line_of.get(thread, (code, None))
            last_line_of[thread] = (code, line)
            if (thread, code, line) != key:
                steps.append(Step(thread, where(code.co_filename, line),
                                  source_line(code.co_filename, line).strip()))
                key = (thread, code, line)
            events.append((len(steps) - 1, thread, None))
        switch = switch_at.get(number)
        if switch is not None and steps:
            switches.append(Switch(len(steps) - 1, *switch))
            key = None
    return Timeline(names, steps, switches, _holds(steps, events))


def _holds(steps: list[Step], events: list[tuple[int, int, str | None]]) -> list[Hold]:
    """Lock holds from the trace: ``(step, thread, synchronisation call or None)``.

    An acquire is a preemption point before the lock is taken: the thread holds
    it from its next step on (after a wait, if it blocked), and until its release.
    """
    stacks: dict[int, list[tuple[str, int]]] = {}
    pending: dict[int, list[str]] = {}  # acquires not yet returned
    holds: list[Hold] = []
    for index, thread, call in events:
        stack = stacks.setdefault(thread, [])
        for label in pending.pop(thread, []):
            stack.append((label, index))
        if call is None:
            continue
        if call in _HOLDING:
            pending.setdefault(thread, []).append(f"{call.split('.')[0]} at {steps[index].where or '?'}")
        elif call.endswith(".release") and stack:
            lock, begin = stack.pop()
            holds.append(Hold(thread, lock, begin, index))
    end = len(steps) - 1
    for thread, stack in stacks.items():
        holds.extend(Hold(thread, lock, begin, end) for lock, begin in stack)
    return sorted(holds, key=lambda h: (h.start, h.thread))


def _kept(timeline: Timeline, around: int = 3, ends: int = 3) -> list[int | None]:
    """Step indices to show: the first and last few and those around each switch; None: folded."""
    count = len(timeline.steps)
    keep = set(range(min(ends, count))) | set(range(max(0, count - ends), count))
    for switch in timeline.switches:
        keep.update(range(max(0, switch.after - around + 1), min(count, switch.after + around + 1)))
    shown: list[int | None] = []
    for index in range(count):
        if index in keep:
            shown.append(index)
        elif shown and shown[-1] is not None:
            shown.append(None)
    return shown


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def lanes(timeline: Timeline, width: int = WIDTH) -> str:
    """One column per thread, steps down the page, switches across; at most ``width`` columns.

    A thread that holds a lock while another runs shows ``┃`` in its lane; the
    failing step is marked ``✗``; long runs keep the steps around each switch.
    """
    count = max(1, len(timeline.threads))
    lane = max(8, (width - 2 * (count - 1)) // count)
    switch_after = {s.after: s for s in timeline.switches}
    holding: dict[int, set[int]] = {}
    for hold in timeline.holds:
        for held in range(hold.start, hold.end + 1):
            holding.setdefault(held, set()).add(hold.thread)
    rows = ["  ".join(_cut(name, lane).ljust(lane) for name in timeline.threads).rstrip()]
    rows.append("  ".join("-" * lane for _ in timeline.threads))
    for index in _kept(timeline):
        if index is None:
            rows.append("  ".join(_cut(":", lane).ljust(lane) for _ in timeline.threads).rstrip())
            continue
        step = timeline.steps[index]
        cells = []
        for thread in range(count):
            if thread == step.thread:
                mark = "✗ " if index == timeline.failing else ""
                calls = f" [{', '.join(dict.fromkeys(step.calls))}]" if step.calls else ""
                text = f"{mark}{step.where} {step.source}".strip() + calls
                cells.append(_cut(text, lane).ljust(lane))
            else:
                cells.append(("┃" if thread in holding.get(index, ()) else "").ljust(lane))
        rows.append("  ".join(cells).rstrip())
        switch = switch_after.get(index)
        if switch is not None:
            rows.append(_cut(f"~~ {switch.text(timeline.threads)} ", width).ljust(width, "~"))
    return "\n".join(rows)


# ------------------------------------------------------------------ the page

_LANE_H = 64
_LEFT = 170
_TOP = 30


def svg(timeline: Timeline) -> str:
    """The timeline as an SVG: a lane per thread, lock holds as bars, switches and the failure marked."""
    count = len(timeline.steps)
    # Wide enough to label each step with its line while the run is short.
    step_w = 96 if count <= 40 else 28
    w = _LEFT + step_w * max(count, 1) + 40
    h = _TOP + _LANE_H * max(len(timeline.threads), 1) + 20
    e = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="the interleaving, one lane per thread">'
    ]

    def x(index: int) -> int:
        return _LEFT + step_w * index + step_w // 2

    def y(thread: int) -> int:
        return _TOP + _LANE_H * thread + _LANE_H // 2

    for thread, name in enumerate(timeline.threads):
        out.append(f'<g class="lane" data-thread="{e(name)}">')
        out.append(f'<rect class="lane-bg" x="0" y="{y(thread) - _LANE_H // 2}" width="{w}" '
                   f'height="{_LANE_H}"/>')
        out.append(f'<text class="lane-name" x="8" y="{y(thread) + 4}">{e(name)}</text>')
        out.append(f'<line class="lane-axis" x1="{_LEFT}" y1="{y(thread)}" x2="{w - 20}" '
                   f'y2="{y(thread)}"/>')
        out.append("</g>")
    for hold in timeline.holds:
        x0 = x(hold.start) - step_w // 2 + 2
        width = step_w * (hold.end - hold.start + 1) - 4
        out.append(
            f'<rect class="hold" data-thread="{e(timeline.threads[hold.thread])}" x="{x0}" '
            f'y="{y(hold.thread) - 16}" width="{width}" height="7" rx="3">'
            f"<title>{e(timeline.threads[hold.thread])} holds {e(hold.lock)}</title></rect>"
        )
    for switch in timeline.switches:
        sx = x(switch.after) + step_w // 2
        kind = "preemption" if switch.reason != "blocked" else "block"
        out.append(
            f'<g class="{kind}"><line x1="{sx}" y1="{y(switch.before)}" x2="{sx}" '
            f'y2="{y(switch.to)}"/><title>{e(switch.text(timeline.threads))}</title></g>'
        )
    for index, step in enumerate(timeline.steps):
        failing = index == timeline.failing
        css = "step failing" if failing else "step"
        tip = f"{index + 1}. {timeline.threads[step.thread]}: {step.where} {step.source}".strip()
        if step.calls:
            tip += f"  [{', '.join(dict.fromkeys(step.calls))}]"
        radius = 8 if failing else 5
        out.append(f'<circle class="{css}" cx="{x(index)}" cy="{y(step.thread)}" r="{radius}">'
                   f"<title>{e(tip)}</title></circle>")
        if step_w >= 96 and step.where:
            out.append(f'<text class="step-line" x="{x(index)}" y="{y(step.thread) + 22}" '
                       f'text-anchor="middle">{e(_cut(step.where, 16))}</text>')
    out.append("</svg>")
    return "\n".join(out)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.scroll { overflow-x: auto; border: 1px solid #ddd; }
.lane-bg { fill: #fff; stroke: #eee; }
.lane-name { font: 13px monospace; fill: #333; }
.lane-axis { stroke: #bbb; stroke-width: 1; }
.hold { fill: #3a7bd5; opacity: 0.75; }
.step { fill: #666; }
.step-line { font: 10px monospace; fill: #555; }
.step.failing { fill: #d62728; stroke: #000; stroke-width: 1.5; }
.preemption line { stroke: #ff7f0e; stroke-width: 2; stroke-dasharray: 4 3; }
.block line { stroke: #999; stroke-width: 1.5; stroke-dasharray: 1 3; }
table { border-collapse: collapse; font: 12px monospace; }
td, th { padding: 2px 8px; text-align: left; }
tr.failing { background: #fde0e0; }
tr.switch td { color: #b35900; }
.legend span { margin-right: 1.5em; }
"""


def html_page(timeline: Timeline, title: str, message: str) -> str:
    """A self-contained page: the message, the SVG timeline, then the steps as a table."""
    e = html.escape
    switch_after = {s.after: s for s in timeline.switches}
    rows = []
    for index, step in enumerate(timeline.steps):
        css = ' class="failing"' if index == timeline.failing else ""
        calls = ", ".join(dict.fromkeys(step.calls))
        rows.append(f"<tr{css}><td>{index + 1}</td><td>{e(timeline.threads[step.thread])}</td>"
                    f"<td>{e(step.where)}</td><td>{e(step.source)}</td><td>{e(calls)}</td></tr>")
        switch = switch_after.get(index)
        if switch is not None:
            rows.append(f'<tr class="switch"><td></td><td colspan="4">-- '
                        f"{e(switch.text(timeline.threads))} --</td></tr>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{len(timeline.steps)} steps, {len(timeline.preemptions)} preemption(s). "
        "Hover a dot for its line.</p>",
        '<p class="legend"><span style="color:#3a7bd5">■ a lock held</span>'
        '<span style="color:#ff7f0e">┆ a preemption</span>'
        '<span style="color:#999">┆ a thread blocks</span>'
        '<span style="color:#d62728">● the failing step</span></p>',
        f'<div class="scroll">{svg(timeline)}</div>',
        f"<pre class=\"message\">{e(message.split(chr(10) + 'Interleaving (')[0])}</pre>",
        "<h2>Steps</h2>",
        "<table><tr><th>#</th><th>thread</th><th>line</th><th>source</th><th>calls</th></tr>",
        *rows,
        "</table></body></html>",
    ])
