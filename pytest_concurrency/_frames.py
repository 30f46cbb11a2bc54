"""One vocabulary for every report: user frames, call sites, stacks, locks, threads, cycles.

Every report of the plugin (a controlled deadlock or livelock, a real
deadlock, stuck threads, a lock-order inversion, a leaked thread, gevent's
blocked loop) names things through this module, so that a student reads the
same lock, thread and line the same way everywhere:

- a line: ``bank.py:36`` (:func:`where`), with the function and the source
  when it is a call site: ``bank.py:41 in transfer: with src.lock:``
  (:func:`call_site`).  File names are relative to the current directory
  when the file is under it, else bare; never a path inside the plugin.
- a lock: ```src.lock` (RLock#1 made at bank.py:36)`` (:func:`lock_label`):
  the name the thread's code uses for it (else the name the line that made
  it gives it), its kind, its number in the report (in the order the locks
  were made: :func:`renumber`), where it was made.
- a thread: ``thread 'worker-1'`` (:func:`thread_label`).
- a stack: the user frames only, outermost first, one call site a line.

User code is everything outside the standard library, site-packages and the
plugin itself (:func:`is_user_file`); the controlled scheduler asks it on its
hot paths, so the answer is cached per file name.

This module imports nothing of the package.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import sysconfig
import threading as _threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from types import CodeType, FrameType, TracebackType
from typing import Any, TypeVar

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _library_prefixes() -> tuple[str, ...]:
    prefixes = {PACKAGE_DIR}
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            prefixes.add(os.path.realpath(paths[key]) + os.sep)
            prefixes.add(os.path.abspath(paths[key]) + os.sep)
    for path in sys.path:
        if path.endswith(("site-packages", "dist-packages")):
            prefixes.add(os.path.abspath(path) + os.sep)
    return tuple(sorted(prefixes))


_LIBRARY = _library_prefixes()
_user_file_cache: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """True for the student's code: not the stdlib, site-packages or the plugin.

    >>> is_user_file(os.__file__), is_user_file(__file__), is_user_file("<string>")
    (False, False, True)
    """
    known = _user_file_cache.get(filename)
    if known is None:
        if filename.startswith("<"):
            # <frozen importlib._bootstrap> is the stdlib; <string> is user code (exec).
            known = not filename.startswith("<frozen")
        else:
            path = os.path.abspath(filename)
            known = not path.startswith(_LIBRARY)
        _user_file_cache[filename] = known
    return known


def is_plugin_file(filename: str) -> bool:
    """True for a file of this package (never shown in a report)."""
    return os.path.abspath(filename).startswith(PACKAGE_DIR)



_FILE_LINE = re.compile(r'^(\s*)File "([^"]+)", line \d+')


def without_plugin_frames(text: str) -> str:
    """A formatted traceback or stack dump without the frames of this package.

    Works on ``traceback`` output (a ``File`` line, then its source and carets,
    indented deeper) and on ``faulthandler`` dumps (``File`` lines alone).

    >>> inside = os.path.join(PACKAGE_DIR, "deadlock", "_waitgraph.py")
    >>> print(without_plugin_frames("\\n".join([
    ...     '  File "bank.py", line 3, in f', "    g()",
    ...     f'  File "{inside}", line 9, in wait', "    x()", "ValueError"])))
      File "bank.py", line 3, in f
        g()
    ValueError
    """
    kept: list[str] = []
    hidden_at: int | None = None  # the indentation of a hidden frame's File line
    for line in text.splitlines():
        match = _FILE_LINE.match(line)
        if match:
            hidden_at = len(match.group(1)) if is_plugin_file(match.group(2)) else None
            if hidden_at is not None:
                continue
        elif hidden_at is not None:
            if len(line) - len(line.lstrip()) > hidden_at and line.strip():
                continue
            hidden_at = None
        kept.append(line)
    return "\n".join(kept) + ("\n" if text.endswith("\n") else "")


_OWN_THREAD_STACK = re.compile(r"^~+ Stack of pytest-concurrency [^\n]*~+\n(?:  [^\n]*\n?)*", re.M)


def without_plugin_stacks(text: str) -> str:
    """Captured output (pytest-timeout's dump of every thread) without the plugin's threads and frames."""
    return without_plugin_frames(_OWN_THREAD_STACK.sub("", text))

def user_frames(frame: FrameType | None) -> Iterator[FrameType]:
    """The user frames of a stack, innermost first."""
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            yield frame
        frame = frame.f_back


def first_user_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost user frame at or above ``frame``, or None."""
    while frame is not None and not is_user_file(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def caller(frame: FrameType | None) -> FrameType | None:
    """The frame a site is shown for: the innermost user frame, else the innermost one
    outside the plugin (library code that made a lock on nobody's behalf)."""
    fallback = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if is_user_file(filename):
            return frame
        if fallback is None and not filename.startswith(PACKAGE_DIR):
            fallback = frame
        frame = frame.f_back
    return fallback


# ------------------------------------------------------------------ lines

_short: dict[tuple[str, str], str] = {}


def short_path(filename: str) -> str:
    """The file as a report shows it: relative to the current directory, else its bare name."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    key = (cwd, filename)
    known = _short.get(key)
    if known is None:
        known = filename
        if not filename.startswith("<"):
            path = os.path.abspath(filename)
            if cwd and path.startswith(cwd.rstrip(os.sep) + os.sep) and not path.startswith(PACKAGE_DIR):
                known = os.path.relpath(path, cwd)
            else:
                known = os.path.basename(path)
        _short[key] = known
    return known


def where(filename: str, line: int | None) -> str:
    """``bank.py:36``."""
    return f"{short_path(filename)}:{line if line is not None else '?'}"


def source_line(filename: str, line: int | None) -> str:
    if line is None:
        return ""
    return linecache.getline(filename, line).strip()


def call_site(filename: str, line: int | None, function: str | None = None) -> str:
    """``bank.py:41 in transfer: with src.lock:`` (what is known of it)."""
    text = where(filename, line)
    if function:
        text += f" in {function}"
    source = source_line(filename, line)
    return f"{text}: {source}" if source else text


def code_site(code: CodeType, line: int | None) -> str:
    return call_site(code.co_filename, line, code.co_name)


def frame_site(frame: FrameType) -> str:
    return call_site(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def user_site(frame: FrameType | None, missing: str = "(no user code on its stack)") -> str:
    """The call site of the innermost user frame of a stack."""
    user = first_user_frame(frame)
    return frame_site(user) if user is not None else missing


def is_test_file(filename: str) -> bool:
    """A test module or a conftest: the kit's code, not the student's.

    >>> is_test_file("exercises/07_thread_pool/test_thread_pool.py"), is_test_file("thread_pool.py")
    (True, False)
    """
    name = os.path.basename(filename)
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def student_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost frame of the student's own module on a stack (user code that is
    neither a test file nor source run by ``eval``), or None."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and is_user_file(filename) and not is_test_file(filename):
            return frame
        frame = frame.f_back
    return None


def running_line(frame: FrameType) -> str:
    """``thread_pool.py:41 in submit: `while self._busy:``` (the line a frame is at, quoted)."""
    code = frame.f_code
    text = f"{where(code.co_filename, frame.f_lineno)} in {code.co_name}"
    source = source_line(code.co_filename, frame.f_lineno)
    return f"{text}: `{source}`" if source else text


# ------------------------------------------------------------------ stacks

Entry = tuple[str, int | None, str]  # file, line, function


def frame_entries(frame: FrameType | None) -> list[Entry]:
    """A live stack, outermost first."""
    entries: list[Entry] = []
    while frame is not None:
        entries.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    entries.reverse()
    return entries


def traceback_entries(tb: TracebackType | None) -> list[Entry]:
    """A traceback, outermost first."""
    entries: list[Entry] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        entries.append((code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    return entries


# The interpreter's scripts (bin/pytest): the runner, never the student's code.
_SCRIPTS = tuple(
    {os.path.abspath(p) + os.sep for p in (sysconfig.get_paths().get("scripts"), os.path.dirname(sys.executable)) if p}
)


def _shown(filename: str) -> bool:
    return is_user_file(filename) and not os.path.abspath(filename).startswith(_SCRIPTS)


def format_entries(
    entries: Sequence[Entry], indent: str = "    ", plumbing: Callable[[str], bool] | None = None
) -> str:
    """The user frames of a stack, one call site a line; the innermost library frames
    (never the plugin's) when no user code is on it.  ``plumbing``: more files to leave out."""
    shown = [e for e in entries if _shown(e[0]) and not (plumbing and plumbing(e[0]))]
    if not shown:
        library = [e for e in entries if not is_plugin_file(e[0])]
        shown = library[-3:]
        if not shown:
            return f"{indent}(no stack)\n"
        return f"{indent}(no user code on the stack; it is in:)\n" + "".join(
            f"{indent}{call_site(*e)}\n" for e in shown
        )
    return "".join(f"{indent}{call_site(*e)}\n" for e in shown)


def format_stack(frame: FrameType | None, indent: str = "    ") -> str:
    """The user frames of a live stack, outermost first, one call site a line."""
    if frame is None:
        return f"{indent}(no stack: the thread has ended)\n"
    return format_entries(frame_entries(frame), indent)


# ------------------------------------------------------------------ locks and threads


def thread_label(name: str) -> str:
    """``thread 'worker-1'``."""
    return f"thread {name!r}"


def lock_label(kind: str, made: str | None, name: str | None = None, serial: int | None = None) -> str:
    """```self.a` (Lock#1 made at bank.py:5)``; unnamed: ``Lock#1 made at bank.py:5``.

    ``made``: where it was made (``where()``).  ``name``: how the code calls
    it.  The serial tells apart locks made on one line (two accounts' locks);
    :func:`renumber` makes them 1, 2... in each report, in order of creation.
    """
    made_at = f" made at {made}" if made else ""
    number = f"#{serial}" if serial is not None else ""
    if name:
        return f"`{name}` ({kind}{number}{made_at})"
    return f"{kind}{number}{made_at}"


_ASSIGNED: dict[tuple[str, int, str], str | None] = {}


def assigned_name(filename: str, line: int | None, kind: str) -> str | None:
    """The name a lock is given on the line that makes it: ``self.a = threading.Lock()``."""
    if line is None:
        return None
    key = (filename, line, kind)
    if key not in _ASSIGNED:
        match = re.match(
            r"\s*([A-Za-z_][\w.]*)\s*(?::[^=]*)?=\s*(?:[\w.]+\.)?" + re.escape(kind) + r"\(",
            source_line(filename, line),
        )
        _ASSIGNED[key] = match.group(1) if match else None
    return _ASSIGNED[key]


def _namespace(value: Any) -> dict[str, Any] | None:
    # Only plain instance attributes: a property would run user code in a report.
    try:
        namespace = object.__getattribute__(value, "__dict__")
    except (AttributeError, TypeError):
        return None
    return namespace if isinstance(namespace, dict) else None


def names_in_stacks(objects: Iterable[Any], stacks: Iterable[FrameType | None]) -> dict[int, str]:
    """id -> how the user code on these stacks calls each object: ``a``, ``self.lock``, ``src.lock``.

    Frame by frame (innermost first, stacks in order): a local, then an
    attribute of a local, then a global of the frame's module.
    """
    wanted = {id(obj) for obj in objects}
    found: dict[int, str] = {}
    for top in stacks:
        for frame in user_frames(top):
            if len(found) == len(wanted):
                return found
            try:
                local_values = list(frame.f_locals.items())
            except Exception:  # noqa: BLE001 - a report must not fail
                continue
            for name, value in local_values:
                if id(value) in wanted:
                    found.setdefault(id(value), name)
            for name, value in local_values:
                namespace = _namespace(value)
                if namespace:
                    for attribute, inner in list(namespace.items()):
                        if id(inner) in wanted:
                            found.setdefault(id(inner), f"{name}.{attribute}")
            for name, value in list(frame.f_globals.items()):
                if id(value) in wanted:
                    found.setdefault(id(value), name)
    return found


_SERIAL = re.compile(r"\b(Lock|RLock|Condition|Semaphore)#(\d+)")


def renumber(text: str) -> str:
    """Lock#1, Lock#2... in order of creation among the locks a report names (the serials
    count every lock ever made), so that one test's reports number its locks alike.

    >>> renumber("RLock#57 and Lock#12, Lock#57")
    'RLock#2 and Lock#1, Lock#2'
    """
    serials = sorted({int(match.group(2)) for match in _SERIAL.finditer(text)})
    numbers = {serial: i for i, serial in enumerate(serials, start=1)}
    return _SERIAL.sub(lambda match: f"{match.group(1)}#{numbers[int(match.group(2))]}", text)


# ------------------------------------------------------------------ wait-for cycles

Node = TypeVar("Node", bound=Hashable)


def find_cycle(waits_for: Mapping[Node, Node | None], order: Iterable[Node] | None = None) -> list[Node] | None:
    """The nodes of a cycle in a wait-for graph (each node waits for at most one), or None.

    ``order``: the nodes in the order a report lists them (threads in the
    order they started); the cycle starts at the first of them, whoever
    blocked first.

    >>> find_cycle({1: 2, 2: 3, 3: 2}), find_cycle({1: 2, 2: 3, 3: 2}, order=[3, 2, 1])
    ([2, 3], [3, 2])
    """
    ordered = list(order) if order is not None else list(waits_for)
    for start in ordered:
        path: list[Node] = []
        node: Node | None = start
        while node is not None and node in waits_for and node not in path:
            path.append(node)
            node = waits_for[node]
        if node is not None and node in path:
            cycle = path[path.index(node):]
            rank = {n: i for i, n in enumerate(ordered)}
            first = min(range(len(cycle)), key=lambda i: rank.get(cycle[i], len(rank)))
            return cycle[first:] + cycle[:first]
    return None


def cycle_text(names: Sequence[str], label: Callable[[str], str] = thread_label) -> str:
    """``thread 'A' -> thread 'B' -> thread 'A'``."""
    return " -> ".join(label(name) for name in [*names, names[0]])


# ------------------------------------------------------------------ one thread, in a report

Held = tuple[str, str | None]  # the lock's label, where it was taken (a call site)


def describe_thread(
    name: str,
    holds: Sequence[Held],
    waits: str | None = None,
    site: str | None = None,
    owner: str | None = None,
    extra: str = "",
) -> list[str]:
    """A thread of a deadlock report, the same in controlled and real runs::

        thread 'T1' holds `self.a` (Lock made at bank.py:5)
            taken at bank.py:11 in forward: with self.a:
          waits for `self.b` (Lock made at bank.py:6) in Lock.acquire(), held by thread 'T2'
            at bank.py:13 in forward: with self.b:
    """
    lines = [f"  {thread_label(name)}{extra} holds {holds[0][0] if holds else 'nothing'}"]
    for i, (label, taken) in enumerate(holds):
        if i:
            lines.append(f"    and {label}")
        if taken:
            lines.append(f"      taken at {taken}")
    if waits is not None:
        held_by = f", held by {thread_label(owner)}" if owner is not None else ""
        lines.append(f"    waits for {waits}{held_by}")
        if site:
            lines.append(f"      at {site}")
    return lines


# ------------------------------------------------------------ common API misuse

_POOL_FILE = os.sep + os.path.join("multiprocessing", "pool.py")


def error_chain(error: BaseException | None) -> Iterator[BaseException]:
    """``error``, then what caused it (or was being handled when it was raised), each once.

    >>> try:
    ...     try:
    ...         1 / 0
    ...     except ZeroDivisionError as cause:
    ...         raise ValueError("x") from cause
    ... except ValueError as error:
    ...     [type(e).__name__ for e in error_chain(error)]
    ['ValueError', 'ZeroDivisionError']
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def explain_error(error: BaseException) -> str | None:
    """What a raw error of the standard library means for a student, when it is a common misuse.

    >>> explain_error(ValueError("Pool not running")).split(":")[0]
    'The pool no longer takes tasks'
    >>> explain_error(ValueError("x")) is None
    True
    """
    if isinstance(error, ValueError) and str(error) == "Pool not running":
        return (
            "The pool no longer takes tasks: close() or terminate() (or the end of its `with` "
            "block) came before this call. Submit every task first (map, apply_async), then "
            "close() and join()."
        )
    return None


def explain_stuck(frames: Iterable[FrameType | None]) -> list[str]:
    """Why these blocked threads can never go on, when their stacks show a common misuse."""
    notes: list[str] = []
    for frame in frames:
        while frame is not None:
            code = frame.f_code
            owner = frame.f_locals.get("self") if code.co_name in ("acquire", "join") else None
            if (code.co_name == "acquire" and isinstance(owner, _threading.Semaphore)
                    and getattr(owner, "_initial_value", None) == 0
                    and getattr(owner, "_value", None) == 0):
                note = (
                    "A BoundedSemaphore made with 0 slots: nobody can ever enter. Was the "
                    "limit 0? Check it (refuse a limit below 1) where the semaphore is made."
                )
            elif code.co_name == "join" and code.co_filename.endswith(_POOL_FILE):
                note = (
                    "Pool.join() after close() waits for every task to end: a task that never "
                    "ends keeps it waiting for ever. Use terminate() to stop the workers "
                    "(then join())."
                )
            else:
                frame = frame.f_back
                continue
            if note not in notes:
                notes.append(note)
            break
    return notes
