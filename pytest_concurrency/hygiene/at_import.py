"""What importing a student's module started: threads, processes, greenlets, ``atexit`` handlers.

Code at the top of a student's module runs when :func:`~pytest_concurrency.load_impl`
imports it, during collection, before any test: a thread, a process or a
greenlet started there belongs to no test, so the per-test hygiene check
never sees it.  :func:`recording` watches one import and remembers, for the
exercise, everything that it started and that still runs, each with the
student's line that started it::

    with recording(path, "07_thread_pool"):
        spec.loader.exec_module(module)

The hygiene part (:mod:`.plugin`) fails the exercise's first test with
:func:`report` and stops what is listed (:func:`stop`); what could not be
stopped, or what no test of the exercise came to, is in :func:`leftovers` at
the end of the session.

This module only records: it has no pytest hooks.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

try:
    import _posixsubprocess
except ImportError:  # Windows
    _posixsubprocess = None  # type: ignore[assignment]

from .._frames import call_site, first_user_frame, is_user_file, short_path, thread_label

# How long a thread started at import gets to end once asked to (it may be between two steps).
STOP_PATIENCE = 1.0


@dataclass
class Started:
    """One thing an import started: a thread, a process or a greenlet, and where."""

    kind: str  # "thread", "process", "greenlet"
    obj: Any  # threading.Thread, psutil.Process, gevent.Greenlet
    site: str | None  # the student's line (a call site), None when it is not known

    def describe(self) -> str:
        """``thread 'Thread-1 (serve)' (non-daemon) at thread_pool.py:12: Thread(...).start()``."""
        if self.kind == "thread":
            kind = "daemon" if self.obj.daemon else "non-daemon"
            what = f"{thread_label(self.obj.name)} ({kind})"
        elif self.kind == "process":
            from .processes import describe

            what = f"process {describe(self.obj)}"
        else:
            what = f"greenlet {self.obj!r}"
        return f"{what} at {self.site}" if self.site else f"{what} (where it started is not known)"

    def running(self) -> bool:
        if self.kind == "thread":
            return bool(self.obj.is_alive())
        if self.kind == "process":
            from .processes import is_running

            return is_running(self.obj)
        return bool(self.obj) and not self.obj.dead


@dataclass
class ImportRecord:
    """What importing one student module started and left running."""

    module_file: Path
    exercise: str | None  # the exercise folder's name: whose first test fails
    started: list[Started] = field(default_factory=list)
    broken: bool = False  # the import itself failed: the exercise's tests fail as broken anyway

    def running(self) -> list[Started]:
        return [s for s in self.started if s.running()]


# Every import that left something running, for the session; the exercise's first test takes its own.
_records: list[ImportRecord] = []
_untaken: dict[str, list[ImportRecord]] = {}


def pending() -> bool:
    """Whether some exercise's first test still has to report what its import started (cheap)."""
    return bool(_untaken)


def take(exercise: str | None) -> list[ImportRecord]:
    """The records of ``exercise`` not reported yet; they are reported once."""
    if exercise is None:
        return []
    return _untaken.pop(exercise, [])


def leftovers() -> list[tuple[ImportRecord, Started]]:
    """What imports of this session started and that still runs."""
    return [(record, s) for record in _records for s in record.running()]


def forget() -> None:
    """A new session (pytester runs pytest inside pytest) starts with nothing recorded."""
    _records.clear()
    _untaken.clear()


# ---------------------------------------------------------------- recording one import


def _site(frame: FrameType | None, path: str) -> str | None:
    """The innermost line of the student's module on the stack, else of any user code."""
    inner = frame
    while inner is not None and inner.f_code.co_filename != path:
        inner = inner.f_back
    inner = inner or first_user_frame(frame)
    if inner is None:
        return None
    return call_site(inner.f_code.co_filename, inner.f_lineno)


def _greenlet_site(greenlet: Any, path: str) -> str | None:
    """Where a greenlet was spawned: gevent keeps a light copy of the spawning stack."""
    frame = getattr(greenlet, "spawning_stack", None)
    user = None
    while frame is not None:
        filename = getattr(getattr(frame, "f_code", None), "co_filename", "")
        if filename == path:
            return call_site(filename, getattr(frame, "f_lineno", None))
        if user is None and filename and is_user_file(filename):
            user = call_site(filename, getattr(frame, "f_lineno", None))
        frame = getattr(frame, "f_back", None)
    return user


def _pending_greenlets() -> list[Any]:
    if "gevent" not in sys.modules:
        return []
    import gc

    from gevent import Greenlet

    return [o for o in gc.get_objects() if isinstance(o, Greenlet) and o and not o.dead]


class _Patches:
    """Wrappers put in place for the length of one import, taken out after (if still ours)."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, Any]] = []

    def wrap(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        real = getattr(owner, name, None)
        if real is None:
            return
        ours = make(real)
        setattr(owner, name, ours)
        self._undo.append((owner, name, real, ours))

    def undo(self) -> None:
        for owner, name, real, ours in reversed(self._undo):
            if getattr(owner, name, None) is ours:
                setattr(owner, name, real)
        self._undo.clear()


@contextlib.contextmanager
def recording(path: Path, exercise: str | None) -> Iterator[ImportRecord]:
    """Watch the import of ``path``: what it starts and leaves running is recorded for ``exercise``.

    ``threading.Thread.start`` and the calls that start processes (``os.fork``,
    ``os.posix_spawn``, the one under ``subprocess`` and ``multiprocessing``'s
    spawn) note the student's line for the length of the import.
    """
    from .processes import ProcessWatch

    filename = str(path)
    record = ImportRecord(path, exercise)
    thread_sites: dict[threading.Thread, str | None] = {}
    process_sites: dict[int, str | None] = {}
    threads_before = set(threading.enumerate())
    greenlets_before = {id(g) for g in _pending_greenlets()}
    watch = ProcessWatch()
    me = os.getpid()

    def on_start(real: Callable[..., Any]) -> Callable[..., Any]:
        def start(thread: threading.Thread, *args: Any, **kwargs: Any) -> Any:
            thread_sites[thread] = _site(sys._getframe(1), filename)
            return real(thread, *args, **kwargs)

        return start

    def on_spawn(real: Callable[..., Any]) -> Callable[..., Any]:
        def spawn(*args: Any, **kwargs: Any) -> Any:
            site = _site(sys._getframe(1), filename)
            pid = real(*args, **kwargs)
            if isinstance(pid, int) and pid > 0 and os.getpid() == me:
                process_sites[pid] = site
            return pid

        return spawn

    def on_popen(real: Callable[..., Any]) -> Callable[..., Any]:
        def execute_child(popen: Any, *args: Any, **kwargs: Any) -> Any:
            site = _site(sys._getframe(1), filename)
            try:
                return real(popen, *args, **kwargs)
            finally:
                if getattr(popen, "pid", None):
                    process_sites[popen.pid] = site

        return execute_child

    patches = _Patches()
    patches.wrap(threading.Thread, "start", on_start)
    subprocess = sys.modules.get("subprocess")
    if subprocess is not None:
        patches.wrap(subprocess.Popen, "_execute_child", on_popen)
    for name in ("fork", "posix_spawn", "posix_spawnp"):
        patches.wrap(os, name, on_spawn)
    if _posixsubprocess is not None:  # under subprocess and multiprocessing's spawn
        patches.wrap(_posixsubprocess, "fork_exec", on_spawn)
    try:
        yield record
    finally:
        patches.undo()
        if os.getpid() == me:  # not in a child the module forked (it never comes back here)
            for thread in threading.enumerate():
                if thread not in threads_before and thread.is_alive():
                    record.started.append(Started("thread", thread, thread_sites.get(thread)))
            for process in watch.alive():
                record.started.append(Started("process", process, process_sites.get(process.pid)))
            for greenlet in _pending_greenlets():
                if id(greenlet) not in greenlets_before:
                    record.started.append(Started("greenlet", greenlet, _greenlet_site(greenlet, filename)))
            if record.started:
                _records.append(record)
                if exercise is not None:
                    _untaken.setdefault(exercise, []).append(record)


# ---------------------------------------------------------------- reporting and stopping

ADVICE = (
    "Code at module level runs when the module is imported (by every test run): "
    'move it into a function, or under `if __name__ == "__main__":`.'
)


def report(records: list[ImportRecord]) -> list[str]:
    """The failure of the exercise's first test: what each import started, with its lines."""
    lines = []
    for record in records:
        lines.append(f"importing {short_path(str(record.module_file))} started what nobody stopped:")
        lines.extend(f"  {s.describe()}" for s in record.started)
    lines.append(ADVICE)
    return lines


def after_stopping(stopped: list[Started]) -> str:
    """The last line of the report, once :func:`stop` has done what it could."""
    stuck = [s for s in stopped if s.running()]
    if stuck:
        return ("Could not stop " + ", ".join(s.describe() for s in stuck)
                + " (blocked outside Python): left for the end of the session.")
    return "They were stopped."


def stop(started: list[Started], raise_in: Callable[[threading.Thread], None]) -> None:
    """Stop what an import started: threads (``raise_in``), processes with their trees, greenlets."""
    threads = [s.obj for s in started if s.kind == "thread" and s.running()]
    for thread in threads:
        raise_in(thread)
    processes = [s.obj for s in started if s.kind == "process" and s.running()]
    if processes:
        from .processes import kill_all

        kill_all(processes)
    greenlets = [s.obj for s in started if s.kind == "greenlet" and s.running()]
    if greenlets:
        import gevent

        with contextlib.suppress(Exception):  # a greenlet may refuse to die: it is reported
            gevent.killall(greenlets, block=True, timeout=STOP_PATIENCE)
    deadline = time.monotonic() + STOP_PATIENCE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
