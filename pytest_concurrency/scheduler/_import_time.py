"""Primitives made at import time, swapped for controlled ones for the length of a run.

Students write ``LOCK = threading.Lock()`` at the top of a module, or as a
class attribute.  Those are made before any test patches ``threading``, so
they are the interpreter's own locks, which the scheduler cannot see: a
thread blocked on one would block for real.  For the length of a run, every
such lock the callables can reach by name is replaced by a controlled one
(the same controlled lock wherever the real one was found), and put back
afterwards.  A ``Condition`` is replaced the same way (on the controlled
twin of its lock).  An ``Event``, ``Semaphore``, ``BoundedSemaphore``,
``Barrier`` or ``queue`` queue keeps its identity and its state (set or not,
its count, its items): only the lock and conditions inside it are swapped.
Subclasses of these made by user code are not looked at.

Reached by name means: the globals of each callable's module, the modules
and the user-defined classes those globals name, and the ``__dict__`` of
objects they name; only modules of user code are looked at (never the
standard library, site-packages or the plugin).  A primitive in use at the
start of the run (a lock held, a thread waiting) is left alone: swapping it
would free it.  Where the locks are is
found once per module and found again when its globals change in number, so
a run pays for a few lookups, not a scan.
"""

from __future__ import annotations

import _thread
import functools
import queue
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _primitives, _state
from ._tracing import is_user_file

_LOCK = _thread.LockType
_RLOCK: type = getattr(_thread, "RLock", type(None))
_CONDITION = threading.Condition  # the stdlib's: this module is imported before any patch
# Objects that keep their state in themselves and wait on a Condition inside:
# the names of the attributes to swap.
_BUILT_ON_CONDITIONS: dict[type, tuple[str, ...]] = {
    threading.Event: ("_cond",),
    threading.Semaphore: ("_cond",),
    threading.BoundedSemaphore: ("_cond",),
    threading.Barrier: ("_cond",),
    queue.Queue: ("mutex", "not_empty", "not_full", "all_tasks_done"),
    queue.LifoQueue: ("mutex", "not_empty", "not_full", "all_tasks_done"),
    queue.PriorityQueue: ("mutex", "not_empty", "not_full", "all_tasks_done"),
}

# (namespace, key, original); restored in reverse order.
Swaps = list[tuple[dict[str, Any] | type, str, Any]]


def swap_in(callables: Iterable[Callable[..., Any]]) -> Swaps:
    """Replace the real primitives the callables reach by controlled ones; what to restore."""
    kinds = _lock_kinds()
    made: dict[int, Any] = {}  # id of a real primitive -> its controlled twin (None: left alone)
    swaps: Swaps = []
    for namespace, key, value in _real_locks(callables, kinds):
        kind = kinds[type(value)]
        if kind == "inside":
            if id(value) not in made:
                made[id(value)] = value
                _swap_inside(value, kinds, made, swaps)
            continue
        controlled = _twin(value, kind, kinds, made)
        if controlled is not None:
            swaps.append((namespace, key, value))
            _store(namespace, key, controlled)
    return swaps


def _twin(value: Any, kind: str, kinds: dict[type, str], made: dict[int, Any]) -> Any:
    """The controlled twin of a real Lock, RLock or Condition (None if it is in use)."""
    if id(value) in made:
        return made[id(value)]
    controlled: Any = None
    if kind == "Condition":
        # Only the stdlib's own, on a real lock, with nobody waiting.
        lock = value._lock if kinds.get(type(value)) == "Condition" else None
        lock_kind = kinds.get(type(lock))
        if lock_kind in ("Lock", "RLock") and not value._waiters:
            controlled_lock = _twin(lock, lock_kind, kinds, made)
            if controlled_lock is not None:
                controlled = _primitives.Condition(controlled_lock)
    elif kinds.get(type(value)) in ("Lock", "RLock") and _is_free(value):
        controlled = _primitives.Lock() if kind == "Lock" else _primitives.RLock()
    if controlled is not None:
        controlled._c_site = None  # made at import time: the report names it instead
    made[id(value)] = controlled
    return controlled


def _swap_inside(value: Any, kinds: dict[type, str], made: dict[int, Any], swaps: Swaps) -> None:
    """Swap the lock and conditions inside an Event, Semaphore, Barrier or queue."""
    attributes = vars(value)
    names = _BUILT_ON_CONDITIONS[type(value)]
    twins = [
        _twin(attributes.get(name), "Condition" if name != "mutex" else "Lock", kinds, made) for name in names
    ]
    if any(twin is None for twin in twins):
        return  # in use, or not what the stdlib puts there: left alone
    for name, twin in zip(names, twins, strict=True):
        swaps.append((attributes, name, attributes[name]))
        attributes[name] = twin


def swap_out(swaps: Swaps) -> None:
    for namespace, key, original in reversed(swaps):
        _store(namespace, key, original)


def _store(namespace: dict[str, Any] | type, key: str, value: Any) -> None:
    if isinstance(namespace, dict):
        namespace[key] = value
    else:
        setattr(namespace, key, value)


def _is_free(lock: Any) -> bool:
    is_owned = getattr(lock, "_is_owned", None)  # an RLock held by this very thread
    if is_owned is not None and is_owned():
        return False
    if not lock.acquire(False):
        return False
    lock.release()
    return True


_kinds_cache: list[Any] = [None, None, None, None]  # found Lock, RLock, Condition; their kinds


def _lock_kinds() -> dict[type, str]:
    """The types of uncontrolled primitives: the interpreter's, and whatever ``threading``
    offered when the patches went in (another tool's instrumented ones)."""
    found = _state.found
    lock, rlock, condition = found.get("Lock"), found.get("RLock"), found.get("Condition")
    if _kinds_cache[0] is lock and _kinds_cache[1] is rlock and _kinds_cache[2] is condition:
        return _kinds_cache[3]
    kinds: dict[type, str] = {_LOCK: "Lock", _RLOCK: "RLock", _CONDITION: "Condition"}
    for name, factory in (("Lock", lock), ("RLock", rlock)):
        if factory is not None:
            kinds.setdefault(factory if isinstance(factory, type) else type(factory()), name)
    if isinstance(condition, type) and issubclass(condition, _CONDITION):
        kinds.update(dict.fromkeys(_with_subclasses(condition), "Condition"))
    kinds.update(dict.fromkeys(_BUILT_ON_CONDITIONS, "inside"))
    _kinds_cache[:] = [lock, rlock, condition, kinds]
    return kinds


def _with_subclasses(cls: type) -> list[type]:
    found = [cls]
    subclass: type
    for subclass in cls.__subclasses__():
        found.extend(_with_subclasses(subclass))
    return found


def _real_locks(
    callables: Iterable[Callable[..., Any]], kinds: dict[type, str]
) -> Iterator[tuple[Any, str, Any]]:
    # No id() here, nor in what it calls on a cache hit: id() is an audited
    # event, and once any audit hook is in (ours is), each call costs a microsecond.
    seen: list[dict[str, Any]] = []
    for function in callables:
        reaches = _reaches_of(function)
        for position, reach in enumerate(reaches):
            root = reach.root
            if not _add_once(seen, root):
                continue
            if not reach.current():
                reach = reaches[position] = _Reach(root)
            # Where the locks were when this module was last scanned: re-read
            # each run (a run costs no full scan unless a namespace grew).
            for holder, key in reach.slots(kinds):
                value = holder.get(key) if isinstance(holder, dict) else vars(holder).get(key)
                if type(value) in kinds:
                    yield holder, key, value


class _Reach:
    """What a module's globals lead to: user modules, classes and objects (computed once)."""

    __slots__ = ("root", "namespaces", "holders", "sizes", "_slots", "_kinds")

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root  # kept alive, so its id is not reused while cached
        self.namespaces: list[dict[str, Any]] = [root]
        self.holders: list[Any] = []
        self._slots: list[tuple[Any, str]] = []
        self._kinds: dict[type, str] | None = None
        for value in list(root.values()):
            self._add(value)
        for namespace in self.namespaces[1:]:
            for value in list(namespace.values()):
                if not isinstance(value, (types.ModuleType, types.FunctionType)):
                    self._add_holder(value)

        self.sizes = [len(namespace) for namespace in self.namespaces]

    def current(self) -> bool:
        return all(len(n) == size for n, size in zip(self.namespaces, self.sizes, strict=True))

    def slots(self, kinds: dict[type, str]) -> list[tuple[Any, str]]:
        """(namespace or class, name) of every lock of these kinds, found once."""
        if self._kinds is not kinds:
            self._kinds = kinds
            found: list[tuple[Any, str]] = []
            for namespace in self.namespaces:
                found.extend((namespace, key) for key, value in namespace.items() if type(value) in kinds)
            for holder in self.holders:
                found.extend((h, key) for h, key, _ in _locks_in(holder, kinds))
            self._slots = found
        return self._slots

    def _add(self, value: Any) -> None:
        if isinstance(value, types.ModuleType):
            if _is_user_module(value) and all(n is not value.__dict__ for n in self.namespaces):
                self.namespaces.append(value.__dict__)
        elif isinstance(value, (types.FunctionType, type)):
            # ``from bank import transfer``: bank's globals too.
            module = sys.modules.get(getattr(value, "__module__", None) or "")
            if (
                module is not None
                and _is_user_module(module)
                and all(n is not module.__dict__ for n in self.namespaces)
            ):
                self.namespaces.append(module.__dict__)
            if isinstance(value, type):
                self._add_holder(value)
        else:
            self._add_holder(value)

    def _add_holder(self, value: Any) -> None:
        cls = value if isinstance(value, type) else type(value)
        if _is_user_class(cls) and all(h is not value for h in self.holders):
            self.holders.append(value)


def _locks_in(holder: Any, kinds: dict[type, str]) -> Iterator[tuple[Any, str, Any]]:
    """Locks in a user class's attributes, or in a user object's ``__dict__``."""
    if isinstance(holder, type):
        for key, value in list(vars(holder).items()):
            if type(value) in kinds:
                yield holder, key, value
        return
    try:
        namespace = object.__getattribute__(holder, "__dict__")
    except AttributeError:
        return
    if isinstance(namespace, dict):
        for key, value in list(namespace.items()):
            if type(value) in kinds:
                yield namespace, key, value


# The type of a callable's object -> [(the globals it runs in, or the class
# itself, and what they reach)]: a few entries each, one per module.
_roots: dict[type, list[tuple[Any, list[_Reach]]]] = {}


def _reaches_of(function: Any) -> list[_Reach]:
    """What the globals of the user modules a callable runs in reach (its own, its object's class's)."""
    while isinstance(function, functools.partial):
        function = function.func
    target = getattr(function, "__func__", function)  # a bound method
    owner_type = type(getattr(function, "__self__", None))
    # Keyed by the globals it runs in, not by the function: a test makes new
    # lambdas for every example, but they share their globals.  (Nor by its
    # code: reading __code__ is an audited event, and __globals__ is not.)
    home = function if isinstance(function, type) else getattr(target, "__globals__", None)
    entries = _roots.setdefault(owner_type, [])
    for known, reaches in entries:
        if known is home:
            return reaches  # checked for changes by the caller, once per module
    reaches = [_Reach(root) for root in _find_globals(function, target)]
    entries.append((home, reaches))
    return reaches


def _find_globals(function: Any, target: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    namespace = getattr(target, "__globals__", None)
    if isinstance(namespace, dict) and _is_user_namespace(namespace):
        _add_once(found, namespace)
    owner = getattr(function, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        module = sys.modules.get(type(owner).__module__)
        if module is not None and _is_user_module(module):
            _add_once(found, module.__dict__)
    if isinstance(function, type):
        module = sys.modules.get(function.__module__)
        if module is not None and _is_user_module(module):
            _add_once(found, module.__dict__)
    return found


def _add_once(found: list[dict[str, Any]], namespace: dict[str, Any]) -> bool:
    """Append ``namespace`` unless that very dict is in ``found``: True if it was appended."""
    if any(namespace is other for other in found):
        return False
    found.append(namespace)
    return True


def _is_user_namespace(namespace: dict[str, Any]) -> bool:
    filename = namespace.get("__file__")
    return isinstance(filename, str) and is_user_file(filename)


def _is_user_module(module: types.ModuleType) -> bool:
    return _is_user_namespace(module.__dict__)


def _is_user_class(cls: type) -> bool:
    module = sys.modules.get(getattr(cls, "__module__", ""), None)
    return module is not None and _is_user_module(module)
