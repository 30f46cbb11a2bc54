"""What each step of a run touches, for :func:`~pytest_concurrency.explore_all`'s reduction.

Two steps of different threads *commute* when neither writes what the other
reads or writes: running them in either order gives the same state.  The
partial-order reduction runs only one order of commuting steps, so this
model must never call two steps independent when they are not.  Where it
cannot tell, it says :data:`ANYTHING`, which conflicts with every step that
touches shared state at all.

An *event* is what one thread does from one scheduling decision to the next:
the bytecode it was about to run at a step, and all untraced code (C code,
the library, the controlled primitives) up to its next step, its blocking or
its end; or, for a thread that was blocked, everything from its wake-up to
its next step.  What an event touches:

- a bytecode that only moves locals, constants and the value stack: nothing;
- attributes by name (``LOAD_ATTR``/``STORE_ATTR``, any object: an
  over-approximation), globals and closure cells by name;
- subscripts, operators, truth tests, iteration: the *heap* (the contents
  of any object), read or written (``x += 1`` with a constant number: nothing;
  a ``for`` over ``range(...)``: nothing);
- a synchronisation point (acquire, ``Condition.wait``): the lock it is on (a
  Condition's lock), as a write, by identity (the order it was made in);
  a release happens just before its point, so the event that ends at the
  point touches the lock, and the one after it nothing;
- a call: if the thread's next step is a synchronisation point, nothing (the
  operation is the next event's) or the lock released; a builtin that only
  reads (``len``, ``range``...) or a method of a builtin container
  (``append``, ``get``...), the heap; into the first bytecode of a
  Python function, the heap (C code in between may touch containers);
  otherwise :data:`ANYTHING`, as for ``Thread.start``/``join``,
  ``time.sleep``, a thread's first event when its callable is not a Python
  function, and wake-ups from anything but a lock or a Condition;
- a return: nothing when it goes straight back to the call that entered its
  function, or out of the thread; otherwise the heap.

>>> import dis
>>> def incr(self):
...     self.n += 1
>>> sorted({str(a) for a in instruction_accesses(incr.__code__).values() if a})
['reads attr n', 'return', 'writes attr n']
"""

from __future__ import annotations

import dis
import sys
from collections.abc import Sequence
from types import CodeType
from typing import Any, NamedTuple

__all__ = ["ANYTHING", "NOTHING", "Access", "Event", "Point", "events", "instruction_accesses"]

Key = tuple[str, Any]
_HEAP: Key = ("heap", None)


_HEAPISH = frozenset({"attr", "global", "heap"})  # what lives in objects a C call can change


class Access:
    """What an event reads and writes; ``anything``: it may touch any shared state.

    Keys are ``(kind, name)``: attributes, globals and cells by name, locks by
    identity, and ``("heap", None)``, the contents of any object.  A write of
    the heap conflicts with every attribute and global too (they live in
    objects' dictionaries), and a read of it with their writes.
    """

    __slots__ = ("reads", "writes", "anything", "_heap_w", "_heap_r", "_heapish", "_heapish_w")

    def __init__(
        self, reads: frozenset[Key] = frozenset(), writes: frozenset[Key] = frozenset(), anything: bool = False
    ) -> None:
        self.reads = reads
        self.writes = writes
        self.anything = anything
        self._heap_w = _HEAP in writes
        self._heap_r = _HEAP in reads
        self._heapish_w = any(k[0] in _HEAPISH for k in writes)
        self._heapish = self._heapish_w or any(k[0] in _HEAPISH for k in reads)

    def __bool__(self) -> bool:
        return self.anything or bool(self.reads) or bool(self.writes)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Access)
            and (self.reads, self.writes, self.anything) == (other.reads, other.writes, other.anything)
        )

    def __hash__(self) -> int:
        return hash((self.reads, self.writes, self.anything))

    def __repr__(self) -> str:
        return f"Access({self})"

    def __str__(self) -> str:
        if self.anything:
            return "anything"
        parts = [f"reads {k[0]} {k[1]}" for k in sorted(self.reads, key=repr)]
        parts += [f"writes {k[0]} {k[1]}" for k in sorted(self.writes, key=repr)]
        return ", ".join(parts).replace(" None", "")

    def union(self, other: Access) -> Access:
        if self.anything or other.anything:
            return ANYTHING
        return Access(self.reads | other.reads, self.writes | other.writes)

    def conflicts(self, other: Access) -> bool:
        """True unless the two certainly commute."""
        if not self or not other:
            return False
        if self.anything or other.anything:
            return True
        if self.writes & other.writes or self.writes & other.reads or other.writes & self.reads:
            return True
        return (
            (self._heap_w and other._heapish)
            or (other._heap_w and self._heapish)
            or (self._heap_r and other._heapish_w)
            or (other._heap_r and self._heapish_w)
        )


NOTHING = Access()
ANYTHING = Access(anything=True)
HEAP_READ = Access(reads=frozenset({_HEAP}))
HEAP_WRITE = Access(writes=frozenset({_HEAP}))

_LOCAL = frozenset({
    "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST",
    "LOAD_FAST_BORROW", "LOAD_FAST_BORROW_LOAD_FAST_BORROW", "STORE_FAST",
    "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST", "DELETE_FAST", "LOAD_CONST",
    "LOAD_SMALL_INT", "RETURN_CONST", "POP_TOP", "RESUME", "NOP", "COPY", "SWAP",
    "PUSH_NULL", "PRECALL", "KW_NAMES", "CACHE", "EXTENDED_ARG", "JUMP_FORWARD",
    "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE", "JUMP", "JUMP_NO_INTERRUPT",
    "ROT_TWO", "ROT_THREE", "ROT_FOUR", "ROT_N", "DUP_TOP", "DUP_TOP_TWO", "LOAD_CLOSURE",
    "MAKE_CELL", "COPY_FREE_VARS", "NOT_TAKEN", "POP_ITER", "MAKE_FUNCTION",
    "SET_FUNCTION_ATTRIBUTE", "LOAD_ASSERTION_ERROR", "IS_OP", "POP_JUMP_IF_NONE",
    "POP_JUMP_IF_NOT_NONE", "POP_JUMP_FORWARD_IF_NONE", "POP_JUMP_FORWARD_IF_NOT_NONE",
    "POP_JUMP_BACKWARD_IF_NONE", "POP_JUMP_BACKWARD_IF_NOT_NONE", "BUILD_TUPLE", "BUILD_SLICE",
    "GEN_START", "RETURN_GENERATOR", "POP_BLOCK", "SETUP_FINALLY", "SETUP_ASYNC_WITH",
    "PUSH_EXC_INFO", "POP_EXCEPT", "CHECK_EXC_MATCH", "RERAISE", "RAISE_VARARGS",
    "JUMP_IF_NOT_EXC_MATCH", "LOAD_BUILD_CLASS", "INTERPRETER_EXIT", "END_FOR",
})  # fmt: skip
# Instructions that call arbitrary code: what they touch is decided by what follows.
_CALLS = frozenset({
    "CALL", "CALL_FUNCTION", "CALL_FUNCTION_KW", "CALL_FUNCTION_EX", "CALL_METHOD", "CALL_KW",
    "BEFORE_WITH", "SETUP_WITH", "WITH_EXCEPT_START", "LOAD_SPECIAL", "CALL_INTRINSIC_1",
    "CALL_INTRINSIC_2",
})  # fmt: skip
_RETURNS = frozenset({"RETURN_VALUE", "RETURN_CONST"})
_HEAP_WRITES = frozenset({
    "STORE_SUBSCR", "DELETE_SUBSCR", "STORE_SLICE", "YIELD_VALUE",
    "INPLACE_ADD", "INPLACE_SUBTRACT", "INPLACE_MULTIPLY", "INPLACE_OR", "INPLACE_AND",
    "INPLACE_XOR", "INPLACE_TRUE_DIVIDE", "INPLACE_FLOOR_DIVIDE", "INPLACE_MODULO",
    "INPLACE_POWER", "INPLACE_LSHIFT", "INPLACE_RSHIFT", "INPLACE_MATRIX_MULTIPLY",
    "LIST_APPEND", "SET_ADD", "MAP_ADD", "LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE",
    "DICT_MERGE", "SEND", "END_SEND", "GET_YIELD_FROM_ITER",
})  # fmt: skip
_HEAP_READS = frozenset({
    "BINARY_SUBSCR", "BINARY_SLICE", "COMPARE_OP", "CONTAINS_OP", "TO_BOOL", "UNARY_NOT",
    "UNARY_NEGATIVE", "UNARY_INVERT", "UNARY_POSITIVE", "POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE",
    "POP_JUMP_FORWARD_IF_TRUE", "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE",
    "POP_JUMP_BACKWARD_IF_FALSE", "JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP",
    "UNPACK_SEQUENCE", "UNPACK_EX", "FORMAT_VALUE", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC",
    "CONVERT_VALUE", "BUILD_STRING", "BUILD_LIST", "BUILD_SET", "BUILD_MAP",
    "BUILD_CONST_KEY_MAP", "LIST_TO_TUPLE", "BINARY_ADD", "BINARY_SUBTRACT", "BINARY_MULTIPLY",
    "BINARY_TRUE_DIVIDE", "BINARY_FLOOR_DIVIDE", "BINARY_MODULO", "BINARY_POWER",
    "BINARY_LSHIFT", "BINARY_RSHIFT", "BINARY_AND", "BINARY_OR", "BINARY_XOR",
    "BINARY_MATRIX_MULTIPLY", "MATCH_CLASS", "MATCH_MAPPING", "MATCH_SEQUENCE", "MATCH_KEYS",
    "GET_LEN", "GET_ITER", "FOR_ITER",
})  # fmt: skip

CALL = "call"  # decided by what the thread does next: see events()
RETURN = "return"
Kind = Access | str
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None))

_cache: dict[CodeType, dict[int, Kind]] = {}
_PLAIN_CALLS: dict[tuple[str, str], Access] = {}
_return_sites: dict[CodeType, dict[int, int]] = {}  # a call's offset -> the next bytecode's


def _one(kind: str, name: Any, write: bool) -> Access:
    key = frozenset({(kind, name)})
    return Access(writes=key) if write else Access(reads=key)


# Builtins that only read their arguments (and call Python code, which is traced).
_READING_BUILTINS = frozenset({
    "len", "range", "min", "max", "abs", "sum", "sorted", "list", "tuple", "set", "frozenset",
    "dict", "str", "repr", "int", "float", "bool", "isinstance", "issubclass", "enumerate",
    "zip", "reversed", "any", "all", "divmod", "round", "hash", "id", "type", "callable",
})  # fmt: skip
# Methods of the builtin containers, by what they do to their receiver.  A
# class of the test's with a method of one of these names is Python, traced:
# a call of it goes into its code and is not taken for a container's.
_CONTAINER_READS = frozenset({
    "get", "keys", "values", "items", "copy", "count", "index", "__contains__", "__len__",
    "__getitem__", "startswith", "endswith", "join", "split", "strip", "format", "lower", "upper",
})  # fmt: skip
_CONTAINER_WRITES = frozenset({
    "append", "extend", "pop", "popleft", "appendleft", "extendleft", "insert", "remove",
    "clear", "update", "setdefault", "add", "discard", "sort", "reverse", "rotate", "popitem",
    "__setitem__", "__delitem__",
})  # fmt: skip
_NOT_COUNTED = frozenset({"PRECALL", "KW_NAMES", "CACHE", "EXTENDED_ARG", "NOT_TAKEN"})


def _callee(instructions: list[dis.Instruction], index: int) -> tuple[str, str] | None:
    """How the callable of the call at ``index`` was loaded: ("global"/"method", name), if plain."""
    call = instructions[index]
    if call.opname not in ("CALL", "CALL_FUNCTION", "CALL_METHOD", "PRECALL") or call.arg is None:
        return None
    needed = call.arg
    position = index - 1
    while position >= 0:
        instruction = instructions[position]
        if instruction.is_jump_target or "JUMP" in instruction.opname or "FOR_ITER" in instruction.opname:
            return None
        if instruction.opname in _NOT_COUNTED:
            position -= 1
            continue
        if needed == 0:
            if instruction.opname == "LOAD_GLOBAL":
                return "global", str(instruction.argval)
            if instruction.opname == "LOAD_METHOD" or (
                instruction.opname == "LOAD_ATTR" and sys.version_info >= (3, 12) and (instruction.arg or 0) & 1
            ):
                return "method", str(instruction.argval)
            return None
        try:
            effect = dis.stack_effect(
                instruction.opcode, instruction.arg if instruction.opcode >= dis.HAVE_ARGUMENT else None
            )
        except ValueError:
            return None
        if instruction.opname == "PUSH_NULL":
            effect = 0
        needed -= effect
        if needed < 0:
            return None
        position -= 1
    return None


_PLAIN_CALLS.update({("global", name): HEAP_READ for name in _READING_BUILTINS})
_PLAIN_CALLS.update({("method", name): HEAP_READ for name in _CONTAINER_READS})
_PLAIN_CALLS.update({("method", name): HEAP_WRITE for name in _CONTAINER_WRITES})


def _iterates_fresh(instructions: list[dis.Instruction], index: int) -> bool:
    """True if the GET_ITER at ``index`` iterates a ``range(...)`` made just before, or a constant."""
    before = index - 1
    while before >= 0 and instructions[before].opname in _NOT_COUNTED:
        before -= 1
    if before < 0:
        return False
    made = instructions[before]
    if made.opname == "LOAD_CONST":
        return isinstance(made.argval, (tuple, frozenset, str, bytes))
    return made.opname in ("CALL", "CALL_FUNCTION", "PRECALL") and _callee(instructions, before) == (
        "global", "range",
    )


def _classify(instruction: dis.Instruction, before: dis.Instruction | None) -> Kind:
    """What one bytecode touches (CALL, RETURN: decided by what the thread does next)."""
    name = instruction.opname
    if name in _LOCAL:
        return NOTHING
    if name in _CALLS:
        return CALL
    if name in _RETURNS:
        return RETURN
    if name in ("LOAD_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR", "LOAD_ZERO_SUPER_ATTR"):
        # Attributes by name, on any object; a property in Python is traced.
        return _one("attr", instruction.argval, False)
    if name in ("STORE_ATTR", "DELETE_ATTR"):
        return _one("attr", instruction.argval, True)
    in_place = name.startswith("INPLACE_") or (name == "BINARY_OP" and "=" in instruction.argrepr)
    if (
        in_place
        and before is not None
        and before.opname in ("LOAD_CONST", "LOAD_SMALL_INT")
        and isinstance(before.argval, _IMMUTABLE)
    ):
        # ``x += 1``: no container takes a number in place (a NumPy array would).
        return NOTHING
    if name in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"):
        return _one("global", instruction.argval, False)
    if name in ("STORE_GLOBAL", "DELETE_GLOBAL", "STORE_NAME", "DELETE_NAME"):
        return _one("global", instruction.argval, True)
    if name in ("LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF"):
        return _one("cell", instruction.argval, False)
    if name in ("STORE_DEREF", "DELETE_DEREF"):
        return _one("cell", instruction.argval, True)
    if name == "BINARY_OP":
        return HEAP_WRITE if "=" in instruction.argrepr else HEAP_READ  # += can mutate a list
    if name in _HEAP_WRITES:
        return HEAP_WRITE
    if name in _HEAP_READS:
        return HEAP_READ
    return ANYTHING


def instruction_accesses(code: CodeType) -> dict[int, Kind]:
    """offset -> what the bytecode there touches (CALL, RETURN: see events())."""
    found = _cache.get(code)
    if found is None:
        instructions = [i for i in dis.get_instructions(code) if i.opname != "CACHE"]
        found = _cache[code] = {
            i.offset: _classify(i, instructions[n - 1] if n else None) for n, i in enumerate(instructions)
        }
        for n, instruction in enumerate(instructions):
            if found[instruction.offset] == CALL:
                callee = _callee(instructions, n)
                if callee in _PLAIN_CALLS:
                    found[instruction.offset] = _PLAIN_CALLS[callee]
            elif instruction.opname == "GET_ITER" and _iterates_fresh(instructions, n):
                # ``for i in range(n)``: the loop reads and advances only its own iterator.
                found[instruction.offset] = NOTHING
                loop = instructions[n + 1] if n + 1 < len(instructions) else None
                if loop is not None and loop.opname == "FOR_ITER":
                    found[loop.offset] = NOTHING
        _return_sites[code] = {
            instructions[n - 1].offset: i.offset
            for n, i in enumerate(instructions)
            if n and instructions[n - 1].opname in _CALLS
        }
    return found


def _returns_to(code: CodeType, call: int, offset: int) -> bool:
    """True if ``offset`` in ``code`` is where the call at offset ``call`` returns."""
    instruction_accesses(code)
    return _return_sites[code].get(call) == offset


_prologues: dict[CodeType, int] = {}


def _prologue_end(code: CodeType) -> int:
    """The offset of the first bytecode of a call of ``code`` that the tracer sees, at most."""
    end = _prologues.get(code)
    if end is None:
        # The tracer may not see RESUME (3.11+), so the bytecode after it counts as a start too.
        offsets = [i.offset for i in dis.get_instructions(code) if i.opname != "CACHE"]
        names = [i.opname for i in dis.get_instructions(code) if i.opname != "CACHE"]
        first = names.index("RESUME") if "RESUME" in names else -1
        end = _prologues[code] = offsets[first + 1] if 0 <= first < len(offsets) - 1 else 0
    return end


def sync_key(obj: Any, serial_base: int = 0) -> Access:
    """A synchronisation point on ``obj``: its lock, written; anything for other operations.

    A lock is named by the order it was made in since ``serial_base``: the
    same lock in two runs of a scenario (a search compares what a thread did
    in one run with what others do in the next), where ``id()`` would differ.
    """
    lock = getattr(obj, "_lock", None) if hasattr(obj, "_c_waiters") and not hasattr(obj, "_c_owner") else obj
    serial = getattr(lock, "_c_serial", None)
    if serial is not None and hasattr(lock, "_c_owner"):
        return _one("lock", serial - serial_base, True)
    return ANYTHING


class Point(NamedTuple):
    """A scheduling decision: who could go on, who goes on by default, and how to ask for another.

    ``kind`` is ``"step"`` (a preemption at global step ``at``: ``others`` are
    the other runnable threads, in the order ``at_steps`` counts them),
    ``"handoff"`` (the ``at``-th hand-off: ``others`` the candidates, longest
    waiting first, as ``at_handoffs`` counts them) or ``"slice"`` (a time
    slice at step ``at``: ``default`` is where the engine goes, the others
    are reached with ``at_steps``).
    """

    kind: str
    at: int
    default: int
    others: tuple[int, ...]

    @property
    def enabled(self) -> frozenset[int]:
        if self.kind in ("handoff", "slice"):
            return frozenset(self.others)
        return frozenset((self.default, *self.others))

    def decision(self, thread: int) -> tuple[str, tuple[int, int]] | None:
        """The Schedule entry that makes ``thread`` go on here (None: the default)."""
        if thread == self.default:
            return None
        if self.kind == "handoff":
            return "at_handoffs", (self.at, self.others.index(thread))
        return "at_steps", (self.at, self.others.index(thread))


class Event(NamedTuple):
    thread: int
    access: Access
    point: Point | None  # None: nobody else could go on


class _Open:
    __slots__ = ("thread", "access", "point", "code", "offset")

    def __init__(
        self, thread: int, access: Kind, point: Point | None, code: CodeType | None, offset: int = -1
    ) -> None:
        self.thread = thread
        self.access = access  # CALL, RETURN: until the thread's next step says what it did
        self.point = point
        self.code = code
        self.offset = offset


Frames = list[tuple[CodeType, int] | None]  # per thread: the calls its Python frames were entered by


def _settle(
    event: _Open, ended_at: Access | None, to: tuple[CodeType, int] | None, ended: bool, frames: Frames
) -> Access:
    """What an event touched, now that what its thread did next is known.

    ``ended_at``: the lock of the synchronisation point it ended at; ``to``:
    the bytecode it ended at; ``ended``: its thread ended there.  ``frames``
    follows the thread's calls: a return touches nothing only when it goes
    straight back to the call that entered its function (no C code between).
    """
    kind = event.access
    entered = to is not None and to[0] is not event.code and to[1] <= _prologue_end(to[0])
    if entered:
        frames.append((event.code, event.offset) if kind == CALL and event.code is not None else None)
    if kind == CALL:
        if ended_at is not None:
            return ended_at  # straight into a controlled primitive
        if entered:
            return HEAP_WRITE  # into a Python function, through C code that may touch containers
        return ANYTHING
    if kind == RETURN:
        caller = frames.pop() if frames else None
        if ended or (
            to is not None and caller is not None and to[0] is caller[0] and _returns_to(caller[0], caller[1], to[1])
        ):
            return NOTHING  # straight back to the Python caller, or out of the thread
        return HEAP_WRITE if ended_at is None else HEAP_WRITE.union(ended_at)
    assert isinstance(kind, Access)
    return kind if ended_at is None else kind.union(ended_at)


def events(
    log: Sequence[tuple[Any, ...]],
    trace: Sequence[tuple[Any, ...]],
    functions: Sequence[Any],
    serial_base: int = 0,
) -> list[Event]:
    """The events of a run, in the order they happened, from the scheduler's ``log``.

    ``functions``: each thread's callable (None for a thread it started);
    ``serial_base``: the serial of the controlled primitives made before the run (see sync_key).
    """
    done: list[Event] = []
    running: dict[int, _Open] = {}  # thread -> the event it is in
    pending: dict[int, _Open] = {}  # thread -> the step it was preempted before
    woken_from: dict[int, Any] = {}
    frames: dict[int, Frames] = {}
    sync_before: dict[int, Any] = {}
    tentative: _Open | None = None
    point: Point | None = None

    def close(
        thread: int, ended_at: Access | None, to: tuple[CodeType, int] | None = None, ended: bool = False
    ) -> None:
        event = running.pop(thread, None)
        if event is not None:
            access = _settle(event, ended_at, to, ended, frames.setdefault(thread, []))
            done.append(Event(thread, access, event.point))

    def commit() -> None:
        nonlocal tentative
        if tentative is not None:
            running[tentative.thread] = tentative
            tentative = None

    def flush_sync(thread: int) -> None:
        obj = sync_before.pop(thread, None)
        if obj is not None and thread in running:
            opened = running[thread]
            extra = sync_key(obj, serial_base)
            kind = opened.access
            opened.access = extra.union(kind) if isinstance(kind, Access) else ANYTHING

    for entry in log:
        kind = entry[0]
        if kind == "abort":
            break
        if kind == "run":
            target, reason = entry[1], entry[2]
            if tentative is not None and reason in ("preempted", "time slice"):
                pending[tentative.thread] = tentative
                preempted_at = tentative.point
                assert preempted_at is not None  # a preemption needs another thread to go to
                tentative = None
                if reason == "time slice":
                    point = Point("slice", preempted_at.at, target, preempted_at.others)
                else:
                    point = preempted_at
            commit()
            started = pending.pop(target, None)
            if started is not None:
                started.point = point
                running[target] = started
            elif target in woken_from:
                running[target] = _Open(target, sync_key(woken_from.pop(target), serial_base), point, None)
            else:
                function = functions[target] if target < len(functions) else None
                first = NOTHING if getattr(function, "__code__", None) is not None else ANYTHING
                running[target] = _Open(target, first, point, None)
            point = None
            continue
        commit()
        if kind == "first":
            point = Point("step", 0, 0, entry[1])
        elif kind == "handoff":
            point = Point("handoff", entry[1], entry[2][0], entry[2])
        elif kind == "sync":
            thread = entry[1]
            if thread in sync_before:
                flush_sync(thread)
            sync_before[thread] = entry[2]
        elif kind == "step":
            _, thread, step, others, index = entry
            _, code, offset, _ = trace[index]
            obj = sync_before.pop(thread, None)
            access: Kind
            if code is None:
                key = sync_key(obj, serial_base)
                if str(offset).endswith(".release"):
                    # Released before its point: by the event that ends here; after it, nothing.
                    close(thread, key)
                    access = NOTHING
                else:
                    close(thread, NOTHING)  # the call that led here only got to the primitive
                    access = key
            else:
                close(thread, None, (code, offset))
                access = instruction_accesses(code).get(offset, ANYTHING)
            if others:
                step_point: Point | None = Point("step", step, thread, others)
            else:
                step_point = None
            tentative = _Open(thread, access, step_point, code, offset if code is not None else -1)
        elif kind in ("block", "end"):
            thread = entry[1]
            flush_sync(thread)
            close(thread, None, ended=kind == "end")
            if kind == "block":
                woken_from[thread] = entry[2]
    commit()
    for thread in list(running):
        flush_sync(thread)
        close(thread, None)
    return done
