"""Which bytecodes of a code object touch state another thread can reach.

A schedule that counts positions over every bytecode spends most of its
draws between two loads of local variables, where a preemption changes
nothing.  These are the instructions where it can: reads and writes of
attributes, subscripts, written globals and written closure cells.  Loads of
a method or of a lock about to be entered are left out (the call that
follows is a synchronisation point of its own, or touches the receiver,
whose load is counted).

>>> def incr(self):
...     self.n += 1
>>> [name for name, _ in describe(incr.__code__)]
['LOAD_ATTR', 'STORE_ATTR']
"""

from __future__ import annotations

import dis
import sys
from types import CodeType

__all__ = ["data_keys", "data_offsets", "describe"]

_WRITES = frozenset({
    "STORE_ATTR", "DELETE_ATTR", "STORE_SUBSCR", "DELETE_SUBSCR", "STORE_SLICE",
    "STORE_GLOBAL", "DELETE_GLOBAL", "STORE_DEREF", "DELETE_DEREF",
})  # fmt: skip
_READS = frozenset({"BINARY_SUBSCR", "BINARY_SLICE"})
# Calls whose receiver is a synchronisation object: the call is a sync point.
_SYNC_METHODS = frozenset({
    "acquire", "release", "wait", "wait_for", "notify", "notify_all", "set", "clear",
    "is_set", "put", "get", "put_nowait", "get_nowait", "join", "task_done", "start",
})  # fmt: skip

_METHOD_BIT = sys.version_info >= (3, 12)
_cache: dict[CodeType, frozenset[int]] = {}
_keys: dict[CodeType, dict[int, str]] = {}


def data_offsets(code: CodeType) -> frozenset[int]:
    """The offsets of ``code``'s instructions that read or write shared state."""
    offsets = _cache.get(code)
    if offsets is None:
        offsets = _cache[code] = frozenset(offset for _, offset in describe(code))
    return offsets


def data_keys(code: CodeType) -> dict[int, str]:
    """What each of ``code``'s shared-state instructions touches, by name: ``n`` for
    ``self.n`` or a global ``n``, ``[]`` for any subscript.

    Two accesses with one key may be to one place (a read, then a write of
    ``self.n``): the window a preemption opens for a lost update or a torn read.

    >>> def incr(self):
    ...     self.n += 1
    >>> sorted(data_keys(incr.__code__).values())
    ['n', 'n']
    """
    keys = _keys.get(code)
    if keys is None:
        by_offset = {i.offset: i for i in dis.get_instructions(code)}
        keys = _keys[code] = {
            offset: "[]" if "SUBSCR" in name or "SLICE" in name else str(by_offset[offset].argval)
            for name, offset in describe(code)
        }
    return keys


def describe(code: CodeType) -> list[tuple[str, int]]:
    """``(opname, offset)`` of each instruction of ``code`` that touches shared state."""
    instructions = [i for i in dis.get_instructions(code) if i.opname != "CACHE"]
    written_globals = {i.argval for i in instructions if i.opname in ("STORE_GLOBAL", "DELETE_GLOBAL")}
    written_cells = {i.argval for i in instructions if i.opname in ("STORE_DEREF", "DELETE_DEREF")}
    found: list[tuple[str, int]] = []
    for index, instruction in enumerate(instructions):
        name = instruction.opname
        after = instructions[index + 1] if index + 1 < len(instructions) else None
        if name in _WRITES or name in _READS:
            found.append((name, instruction.offset))
        elif name == "LOAD_ATTR":
            if _is_method_load(instruction) or _leads_to_sync(after):
                continue
            found.append((name, instruction.offset))
        elif (name == "LOAD_GLOBAL" and instruction.argval in written_globals) or (
            name in ("LOAD_DEREF", "LOAD_CLASSDEREF") and instruction.argval in written_cells
        ):
            found.append((name, instruction.offset))
    return found


def _is_method_load(instruction: dis.Instruction) -> bool:
    # 3.12+: LOAD_ATTR with its low bit set loads a method (LOAD_METHOD before).
    return instruction.opname == "LOAD_ATTR" and _METHOD_BIT and (instruction.arg or 0) & 1 == 1


def _leads_to_sync(after: dis.Instruction | None) -> bool:
    if after is None:
        return False
    if after.opname in ("BEFORE_WITH", "SETUP_WITH"):
        return True
    method = after.opname == "LOAD_METHOD" or (after.opname == "LOAD_ATTR" and _is_method_load(after))
    return method and after.argval in _SYNC_METHODS
