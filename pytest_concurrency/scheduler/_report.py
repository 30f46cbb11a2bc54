"""Explaining a run: the interleaving as a student draws it, deadlocks, livelocks."""

from __future__ import annotations

import bisect
import dis
import os
import sys
import threading
from collections import Counter
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from .._frames import (
    code_site,
    cycle_text,
    describe_thread,
    explain_stuck,
    find_cycle,
    is_user_file,
    names_in_stacks,
    renumber,
    source_line,
    thread_label,
    user_site,
    where,
)
from . import _primitives
from ._state import FINISHED, ThreadRecord

if TYPE_CHECKING:
    from ._engine import Scheduler

# Where a controlled thread's own plumbing starts (the engine's thread entry points).
_ENGINE_FILE = os.path.join(os.path.dirname(__file__), "_engine.py")

_SHOWN_TYPES = (int, float, str, bool, type(None), bytes)
_LOADS = {"LOAD_FAST", "LOAD_DEREF", "LOAD_GLOBAL", "LOAD_NAME", "LOAD_CONST", "LOAD_FAST_CHECK",
          "LOAD_FAST_LOAD_FAST", "LOAD_CLOSURE", "LOAD_SMALL_INT", "LOAD_FAST_BORROW"}
# code -> ({offset: (index, instruction)}, the instructions in order)
_Table = tuple[dict[int, tuple[int, dis.Instruction]], list[dis.Instruction]]
_instructions: dict[CodeType, _Table] = {}
_line_tables: dict[CodeType, tuple[list[int], list[int | None]]] = {}


# ------------------------------------------------------------------ lines


def line_of(code: CodeType, offset: int) -> int | None:
    table = _line_tables.get(code)
    if table is None:
        starts: list[int] = []
        lines: list[int | None] = []
        for start, _end, line in code.co_lines():
            starts.append(start)
            lines.append(line)
        table = _line_tables[code] = (starts, lines)
    starts, lines = table
    position = bisect.bisect_right(starts, offset) - 1
    return lines[position] if position >= 0 else code.co_firstlineno


def _where(code: CodeType, line: int | None) -> str:
    return where(code.co_filename, line)


# --------------------------------------------------- values read and written


def _instructions_of(code: CodeType) -> _Table:
    table = _instructions.get(code)
    if table is None:
        listed = list(dis.get_instructions(code))
        offsets = {instruction.offset: (i, instruction) for i, instruction in enumerate(listed)}
        table = _instructions[code] = (offsets, listed)
    return table


def _plain(value: Any) -> str | None:
    if isinstance(value, _SHOWN_TYPES):
        text = repr(value)
        return text if len(text) <= 40 else None
    return None


def _name_value(frame: FrameType, instruction: dis.Instruction) -> tuple[bool, Any]:
    name = instruction.argval
    op = instruction.opname
    if op == "LOAD_CONST":
        return True, name
    if not isinstance(name, str):
        return False, None
    if op == "LOAD_GLOBAL" or op == "LOAD_NAME":
        if name in frame.f_globals:
            return True, frame.f_globals[name]
        return False, None
    local_values = frame.f_locals
    if name in local_values:
        return True, local_values[name]
    return False, None


def _operands(listed: list[dis.Instruction], index: int, count: int) -> list[dis.Instruction] | None:
    """The ``count`` simple loads that put this instruction's operands on the stack."""
    found: list[dis.Instruction] = []
    i = index - 1
    while i >= 0 and len(found) < count:
        instruction = listed[i]
        if instruction.opname in ("COPY", "DUP_TOP_TWO", "DUP_TOP", "CACHE", "EXTENDED_ARG", "NOP"):
            i -= 1
            continue
        if instruction.opname not in _LOADS:
            return None
        found.insert(0, instruction)
        i -= 1
    return found if len(found) == count else None


def _attribute(obj: Any, name: str) -> tuple[bool, Any]:
    # Only plain instance attributes: a property would run user code inside the tracer.
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return False, None
    if isinstance(namespace, dict) and name in namespace:
        return True, namespace[name]
    return False, None


def observe(
    scheduler: Scheduler, record: ThreadRecord, code: CodeType, offset: int, frame: FrameType
) -> None:
    """Detailed runs only: note the shared values this instruction reads or writes."""
    pending = scheduler._detail_pending.pop(record.index, None)
    if pending is not None:
        trace_index, getter, label = pending
        ok, value = getter()
        shown = _plain(value) if ok else None
        if shown is not None:
            _annotate(scheduler, trace_index, f"wrote {label} = {shown}")
    offsets, listed = _instructions_of(code)
    entry = offsets.get(offset)
    if entry is None:
        return
    index, instruction = entry
    op = instruction.opname
    trace_index = len(scheduler.trace) - 1
    try:
        if op in ("LOAD_ATTR", "LOAD_GLOBAL", "LOAD_DEREF", "LOAD_NAME", "BINARY_SUBSCR"):
            ok, value, label = _read(frame, listed, index, instruction)
            if ok:
                shown = _plain(value)
                if shown is not None:
                    _annotate(scheduler, trace_index, f"read {label} = {shown}")
        elif op in ("STORE_ATTR", "STORE_GLOBAL", "STORE_DEREF", "STORE_NAME", "STORE_SUBSCR"):
            target = _write_target(frame, listed, index, instruction)
            if target is not None:
                getter, label = target
                scheduler._detail_pending[record.index] = (trace_index, getter, label)
    except Exception:  # a report must never break the run it reports on
        return


def _read(frame: FrameType, listed: list, index: int, instruction: dis.Instruction):
    op = instruction.opname
    if op == "LOAD_ATTR":
        operands = _operands(listed, index, 1)
        if not operands:
            return False, None, ""
        ok, obj = _name_value(frame, operands[0])
        if not ok:
            return False, None, ""
        ok, value = _attribute(obj, instruction.argval)
        return ok, value, f"{operands[0].argval}.{instruction.argval}"
    if op == "BINARY_SUBSCR":
        operands = _operands(listed, index, 2)
        if not operands:
            return False, None, ""
        ok1, container = _name_value(frame, operands[0])
        ok2, key = _name_value(frame, operands[1])
        if not (ok1 and ok2) or type(container) not in (dict, list):
            return False, None, ""
        try:
            value = container[key]
        except (KeyError, IndexError, TypeError):
            return False, None, ""
        return True, value, f"{operands[0].argval}[{key!r}]"
    if op in ("LOAD_DEREF", "LOAD_GLOBAL", "LOAD_NAME"):
        ok, value = _name_value(frame, instruction)
        return ok, value, str(instruction.argval)
    return False, None, ""


def _store_operands(listed: list, index: int, count: int, load_op: str, name: Any):
    """The loads that put a store's target (object, or container and key) on the stack.

    ``x.n = v`` loads the object right before the store; ``x.n += 1`` loads it
    before the matching ``LOAD_ATTR n`` (or ``BINARY_SUBSCR``) and shuffles
    the stack since, so the read is found by walking back on the same line.
    """
    direct = _operands(listed, index, count)
    if direct:
        return direct
    line = listed[index].positions.lineno if hasattr(listed[index], "positions") else None
    i = index - 1
    while i >= 0:
        instruction = listed[i]
        if line is not None and getattr(instruction.positions, "lineno", line) not in (line, None):
            break
        if instruction.opname == load_op and (name is None or instruction.argval == name):
            return _operands(listed, i, count)
        i -= 1
    return None


def _write_target(frame: FrameType, listed: list, index: int, instruction: dis.Instruction):
    op = instruction.opname
    name = instruction.argval
    if op == "STORE_ATTR":
        operands = _store_operands(listed, index, 1, "LOAD_ATTR", name)
        if not operands:
            return None
        ok, obj = _name_value(frame, operands[0])
        if not ok:
            return None
        return (lambda: _attribute(obj, name)), f"{operands[0].argval}.{name}"
    if op == "STORE_SUBSCR":
        operands = _store_operands(listed, index, 2, "BINARY_SUBSCR", None)
        if not operands:
            return None
        ok1, container = _name_value(frame, operands[0])
        ok2, key = _name_value(frame, operands[1])
        if not (ok1 and ok2) or type(container) not in (dict, list):
            return None

        def subscript() -> tuple[bool, Any]:
            try:
                return True, container[key]
            except (KeyError, IndexError, TypeError):
                return False, None

        return subscript, f"{operands[0].argval}[{key!r}]"
    if op in ("STORE_GLOBAL", "STORE_NAME"):
        namespace = frame.f_globals
        return (lambda: (name in namespace, namespace.get(name))), str(name)
    if op == "STORE_DEREF":
        return (lambda: (name in frame.f_locals, frame.f_locals.get(name))), str(name)
    return None


def _annotate(scheduler: Scheduler, trace_index: int, text: str) -> None:
    thread, code, offset, detail = scheduler.trace[trace_index]
    detail = f"{detail}; {text}" if detail else text
    scheduler.trace[trace_index] = (thread, code, offset, detail)


# ------------------------------------------------------------------ the story

# The last run told as a story (a failing test's is the last one before its report),
# and how many steps it had when first told (a deadlock is told before the threads
# are unwound): the plugin draws its picture (``_picture``) for --race-story lanes
# and --race-html.
last_told: tuple[Scheduler, int] | None = None


def format_story(scheduler: Scheduler, limit: int = 40, *, numbered: bool = True) -> str:
    """The run as one line per step: thread, file:line, source, values read and written.

    A step, for a student, is a line of source run by one thread without a
    switch; the synchronisation calls made on that line are shown after it.
    """
    global last_told
    if last_told is None or last_told[0] is not scheduler:
        last_told = (scheduler, len(scheduler.trace))
    names = [t.name for t in scheduler.threads]
    width = max((len(n) for n in names), default=2)
    switches: dict[int, tuple[int, int, str, Any]] = {}
    for step, before, after, reason, waited in scheduler.switches:
        switches.setdefault(step, (before, after, reason, waited))
    lines: list[str] = []
    notes: list[list[str]] = []
    previous_key: Any = None
    last_line_of: dict[int, tuple[CodeType, int | None]] = {}
    for step, (thread, code, offset, detail) in enumerate(scheduler.trace, start=1):
        if code is None:
            # A synchronisation call: shown on the line of source that made it.
            if previous_key is None or previous_key[0] != thread:
                lines.append(f"{names[thread]:<{width}}  {'':<18}")
                notes.append([])
                previous_key = (thread, None, None)
            if offset not in notes[-1]:
                notes[-1].append(offset)
        else:
            line = line_of(code, offset)
            if line is None:  # compiler-made code (a with-block's exit): the line before
                code, line = last_line_of.get(thread, (code, None))
            last_line_of[thread] = (code, line)
            key = (thread, code, line)
            if key != previous_key:
                lines.append(
                    f"{names[thread]:<{width}}  {_where(code, line):<18}  "
                    f"{source_line(code.co_filename, line)}"
                )
                notes.append([])
                previous_key = key
        if detail:
            notes[-1].append(detail)
        switch = switches.get(step)
        if switch is not None:
            before, after, reason, waited = switch
            if reason == "blocked":
                what = _describe_object(waited) if waited is not None else "something"
                verb = f"blocks (waits for {what})"
            else:
                verb = {"preempted": "is preempted", "time slice": "used its time slice"}.get(
                    reason, reason
                )
            lines.append(f"{'':<{width}}  -- {names[before]} {verb}; {names[after]} runs --")
            notes.append([])
            previous_key = None
    lines = [
        f"{text}    # {'; '.join(extra)}" if extra else text
        for text, extra in zip(lines, notes, strict=True)
    ]
    if 0 in switches:
        lines.insert(0, f"{'':<{width}}  -- {names[switches[0][1]]} starts first --")
    if len(lines) > limit:
        # A long run keeps its start, its end and the steps around each switch.
        keep = set(range(0, 4)) | set(range(len(lines) - 8, len(lines)))
        for i, text in enumerate(lines):
            if text.lstrip().startswith("--"):
                keep.update(range(i - 3, i + 4))
        shown: list[str] = []
        skipped = 0
        for i, text in enumerate(lines):
            if i in keep:
                if skipped:
                    shown.append(f"{'':<{width}}  ... {skipped} steps without a switch ...")
                    skipped = 0
                shown.append(text)
            else:
                skipped += 1
        lines = shown
    header = (
        f"Interleaving ({len(scheduler.trace)} steps, "
        f"{scheduler.preemptions_taken} preemption(s)):"
    )
    story = "\n".join([header, *("    " + line for line in lines)])
    return renumber(story) if numbered else story


# ---------------------------------------------------------------- deadlocks


def _describe_object(obj: Any) -> str:
    describe = getattr(obj, "_describe", None)
    if describe is not None:
        return describe()
    if isinstance(obj, ThreadRecord):
        return f"{thread_label(obj.name)} to end"
    if obj == "sleep":
        return "time to pass"
    return repr(obj)


_PLUGIN_API_NAMES = {"thread_join": "Thread.join", "sleep": "time.sleep", "thread_start": "Thread.start"}


def _is_stop(frame: FrameType) -> bool:
    code = frame.f_code
    if is_user_file(code.co_filename):
        return True
    # The frames that call a thread's callable: the API is what they called.
    if code.co_filename == threading.__file__ and code.co_name in ("run", "_bootstrap_inner"):
        return True
    return code.co_filename == _ENGINE_FILE and code.co_name in ("_run_callable", "_thread_main")


def blocking_call(frame: FrameType | None) -> str | None:
    """The name of the call, made by user code, in which this thread is blocked."""
    callee: FrameType | None = None
    while frame is not None and not _is_stop(frame):
        callee = frame
        frame = frame.f_back
    if callee is None:
        return None
    code = callee.f_code
    name = _PLUGIN_API_NAMES.get(code.co_name)
    if name:
        return name
    if code.co_filename == _primitives.__file__:
        # Our primitives share their methods (a base class's acquire): the
        # primitive's own kind says what the student called.
        kind = getattr(callee.f_locals.get("self"), "_kind", None)
        if kind is not None:
            return f"{kind}.{code.co_name}"
    qualname = getattr(code, "co_qualname", None)
    if qualname is None:
        owner = callee.f_locals.get("self")
        qualname = f"{type(owner).__name__}.{code.co_name}" if owner is not None else code.co_name
    return qualname


def _owner_of(obj: Any) -> ThreadRecord | None:
    if isinstance(obj, ThreadRecord):
        return obj
    owner = getattr(obj, "_c_owner", None)
    return owner if isinstance(owner, ThreadRecord) else None


def _cycle(scheduler: Scheduler) -> list[ThreadRecord] | None:
    live = [t for t in scheduler.threads if t.state is not FINISHED]
    waits_for = {t: _owner_of(t.waiting_for) for t in live}
    edges = {t: o for t, o in waits_for.items() if o is not None and o.state is not FINISHED}
    return find_cycle(edges, order=live)


def _taken_at(scheduler: Scheduler, lock: Any, thread: int) -> str | None:
    """Where ``thread`` took ``lock``: the last line of user code it ran before."""
    end = getattr(lock, "_c_taken", -1)
    for index in range(min(end, len(scheduler.trace)) - 1, -1, -1):
        who, code, offset, _ = scheduler.trace[index]
        if who == thread and code is not None:
            line = line_of(code, offset)
            if line is not None:
                return code_site(code, line)
    return None


def _label(obj: Any, names: dict[int, str]) -> str:
    describe = getattr(obj, "_describe", None)
    return describe(names.get(id(obj))) if describe is not None else _describe_object(obj)


# Deadlocks a failed test already showed in full (the test's name, by where each
# thread waits): a later test failing on the same one says so in a few lines,
# rather than the same thirty again.  Filled by the plugin once a test failed.
shown_deadlocks: dict[tuple[str, ...], str] = {}


def describe_deadlock(scheduler: Scheduler) -> tuple[str, tuple[str, ...]]:
    """What the blocked threads hold and wait for, and the interleaving; and where each
    waits (the same places, the same deadlock: the key of ``shown_deadlocks``)."""
    frames = sys._current_frames()
    live = [t for t in scheduler.threads if t.state is not FINISHED]
    stacks = [frames.get(t.ident) if t.ident is not None else None for t in live]
    sites = tuple(sorted(user_site(frame) for frame in stacks))
    cycle = _cycle(scheduler)
    # Only a cycle of lock owners, each waiting in user code, is known by its places.
    earlier = shown_deadlocks.get(sites) if cycle and not any(s.startswith("(") for s in sites) else None
    if earlier is not None:
        waits = [f"  a thread waits at {site}" for site in dict.fromkeys(sites)]
        return "\n".join([
            f"every live thread is blocked ({len(live)}): the same deadlock as in {earlier} "
            "above (its report shows who holds what, and the interleaving).",
            *waits,
        ]), sites
    if all(t.state is FINISHED for t in scheduler.threads if t.root):
        lines = [
            f"the callables returned, but {len(live)} thread(s) they started are blocked for "
            "good and not daemons: a real program would never exit."
        ]
    else:
        lines = [f"every live thread is blocked ({len(live)}): nobody can go on."]
    for t, frame in zip(live, stacks, strict=True):
        # Named as this thread's code calls them, next to its lines.
        names = names_in_stacks([*t.held, t.waiting_for], [frame])

        holds = [(_label(lock, names), _taken_at(scheduler, lock, t.index)) for lock in t.held]
        call = blocking_call(frame)
        waited = _describe_object(t.waiting_for) if isinstance(t.waiting_for, ThreadRecord) else _label(t.waiting_for, names)
        owner = _owner_of(t.waiting_for)
        in_call = f" in {call}()" if call else ""
        lines.extend(describe_thread(
            t.name, holds, f"{waited}{in_call}", user_site(frame),
            owner.name if owner is not None and not isinstance(t.waiting_for, ThreadRecord) else None,
        ))
    if cycle:
        lines.append(f"  cycle: {cycle_text([t.name for t in cycle])} (each waits for the next)")
    else:
        misuse = explain_stuck(stacks)
        lines.extend(f"  {note}" for note in misuse)
        if not misuse:
            lines.append(
                "  no cycle of lock owners: a thread waits for a notify, an Event, a queue item "
                "or a thread that will never come (a lost wakeup, a missing notify or sentinel?)"
            )
    if scheduler.trace:
        lines.append(format_story(scheduler, numbered=False))
    return renumber("\n".join(lines)), sites


def describe_loop(scheduler: Scheduler, record: ThreadRecord) -> str:
    recent = [
        (code, line_of(code, offset))
        for thread, code, offset, _ in scheduler.trace[-2000:]
        if thread == record.index and code is not None
    ]
    if not recent:
        return f"{thread_label(record.name)} was running."
    (code, line), _count = Counter(recent).most_common(1)[0]
    return f"{thread_label(record.name)} loops at {code_site(code, line)}"
