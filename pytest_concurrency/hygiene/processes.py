"""Child processes of the pytest process: find the ones a test started, dump them, kill them.

Used by the ``process_guard`` fixture, by ``pytest_concurrency.testing`` and by
the hygiene check.  A child dumps its Python stacks on ``SIGUSR1`` into a file
we read:

- a forked child inherits the ``faulthandler`` registration that
  :func:`enable_child_dumps` made in the pytest process before the fork;
- a child started by ``spawn`` or ``forkserver`` is a fresh interpreter, so
  :func:`arm_spawned_children` slips an object into the preparation data that
  ``multiprocessing`` pickles for it.  Unpickling that object in the child
  opens the dump file and registers ``faulthandler`` there: before the main
  module is imported and before the process object (target, arguments) is
  unpickled.  This covers ``Pool`` workers and ``Manager`` servers too, since
  they are started the same way.  The child needs nothing but the standard
  library, and no user object is touched.

::

    guard = ProcessGuard().start()
    ...                                   # the test starts processes
    report = guard.stop_survivors()       # None, or their dumps (they are killed)
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil

# Generous: the child's faulthandler writes at once, but this machine may be busy.
DUMP_PATIENCE = 1.0
KILL_PATIENCE = 3.0

_DUMP_SIGNAL = getattr(signal, "SIGUSR1", None)
# The key under which spawned children find the object that arms them.
_PREPARATION_KEY = "pytest_concurrency_dumps"


class _DumpFile:
    """The file every child appends its dumps to (O_APPEND: forked and spawned writers never overwrite)."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="pytest-concurrency-dumps-")
        os.close(fd)
        self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND)

    def close(self) -> None:
        os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(self.path)


_dump_file: _DumpFile | None = None
_dump_users = 0  # pytester runs pytest inside pytest: the inner session must not close the outer's file


def enable_child_dumps() -> None:
    """Make children dump their stacks on SIGUSR1 into a file we can read (forked ones from now on)."""
    global _dump_file, _dump_users
    _dump_users += 1
    if _dump_file is not None or _DUMP_SIGNAL is None:
        return
    if signal.getsignal(_DUMP_SIGNAL) not in (signal.SIG_DFL, None):
        return  # someone else uses SIGUSR1
    _dump_file = _DumpFile()
    faulthandler.register(_DUMP_SIGNAL, file=_dump_file.fd, all_threads=True, chain=False)


def disable_child_dumps() -> None:
    global _dump_file, _dump_users
    _dump_users = max(0, _dump_users - 1)
    if _dump_file is None or _dump_users:
        return
    faulthandler.unregister(_DUMP_SIGNAL)
    _dump_file.close()
    _dump_file = None


class _OpenForAppending:
    """Unpickles, in the child, as the dump file opened for appending."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (io.open, (self.path, "ab", 0))


class _ArmDumps:
    """Unpickles, in the child, as ``faulthandler.register(SIGUSR1, <dump file>, all_threads=True)``.

    faulthandler keeps the file object alive for as long as the handler is registered.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (faulthandler.register, (int(_DUMP_SIGNAL), _OpenForAppending(self.path), True, False))


@contextlib.contextmanager
def arm_spawned_children() -> Iterator[None]:
    """While inside, every child started by ``spawn`` or ``forkserver`` answers SIGUSR1 with a dump.

    Restores ``multiprocessing`` as it was on the way out.  Does nothing if dumps
    are not enabled, if an outer session already armed them, or if nothing has
    imported ``multiprocessing`` yet: importing it for every test would cost a
    suite that never starts a process more than everything else we add to it.
    (A test that imports ``multiprocessing`` inside its body gets its spawned
    children killed, but not dumped.)
    """
    dump_file = _dump_file
    if dump_file is None or "multiprocessing" not in sys.modules:
        yield
        return
    from multiprocessing import spawn

    real = spawn.get_preparation_data
    if getattr(real, "arms_dumps", False):
        yield
        return

    def preparation_data_that_arms_dumps(name: str) -> dict[str, Any]:
        data = real(name)
        # An unknown key: spawn.prepare() in the child ignores it, but unpickling it arms the child.
        data[_PREPARATION_KEY] = _ArmDumps(dump_file.path)
        return data

    preparation_data_that_arms_dumps.arms_dumps = True  # type: ignore[attr-defined]
    spawn.get_preparation_data = preparation_data_that_arms_dumps
    try:
        yield
    finally:
        if spawn.get_preparation_data is preparation_data_that_arms_dumps:
            spawn.get_preparation_data = real


def _catches_dump_signal(pid: int) -> bool:
    """Whether ``pid`` catches SIGUSR1 (Linux: /proc/PID/status SigCgt)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (_DUMP_SIGNAL - 1) & 1)
    except (OSError, ValueError, TypeError):
        pass
    return False


def dump_stack(process: psutil.Process) -> str | None:
    """The Python stacks of a child, via the faulthandler it was armed with; None if it can't."""
    if _dump_file is None or not _catches_dump_signal(process.pid):
        return None  # never send SIGUSR1 to a process that does not catch it: it would die
    fd = _dump_file.fd
    start = os.fstat(fd).st_size
    try:
        process.send_signal(_DUMP_SIGNAL)
    except psutil.Error:
        return None
    deadline = time.monotonic() + DUMP_PATIENCE
    size = start
    while time.monotonic() < deadline:
        time.sleep(0.02)
        new_size = os.fstat(fd).st_size
        if new_size > start and new_size == size:
            break  # the dump has stopped growing
        size = new_size
    size = os.fstat(fd).st_size
    if size <= start:
        return None
    return _without_forked_frames(os.pread(fd, size - start, start).decode("utf-8", "replace").rstrip())


def _without_forked_frames(dump: str) -> str:
    """The dump without the frames under multiprocessing's ``_bootstrap``.

    A forked child's stack goes on below its ``_bootstrap`` with the frames the
    parent had when it forked (pytest's own, dozens): not where the child is.
    """
    lines: list[str] = []
    skipping = False
    skipped = 0
    for line in dump.splitlines():
        is_frame = line.lstrip().startswith("File ")
        if skipping and is_frame:
            skipped += 1
            continue
        if skipping:
            lines.append(f"  ... {skipped} more frame(s): how the process was started")
            skipping, skipped = False, 0
        lines.append(line)
        skipping = _is_bootstrap_frame(line)
    if skipped:
        lines.append(f"  ... {skipped} more frame(s): how the process was started")
    return "\n".join(lines)


def _is_bootstrap_frame(line: str) -> bool:
    return "multiprocessing" in line and line.rstrip().endswith(" in _bootstrap")


def describe(process: psutil.Process) -> str:
    try:
        with process.oneshot():
            command = " ".join(process.cmdline()) or process.name()
            return f"pid {process.pid} ({process.status()}): {command}"
    except psutil.Error:
        return f"pid {process.pid} (gone)"


def describe_with_stacks(processes: list[psutil.Process]) -> list[str]:
    """Report lines: each process, then its Python stacks (indented), or why there are none."""
    lines = []
    for process in processes:
        lines.append(f"  {describe(process)}")
        stack = dump_stack(process)
        if stack:
            lines.extend("      " + line for line in stack.splitlines())
        else:
            lines.append("      (no Python stack: it does not answer SIGUSR1 with a dump; "
                         "not a Python child started by multiprocessing during the test?)")
    return lines


def kill_tree(process: psutil.Process) -> None:
    """Kill ``process`` and every descendant, and reap what we can."""
    try:
        family = [*process.children(recursive=True), process]
    except psutil.Error:
        family = [process]
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(family, timeout=KILL_PATIENCE)


def _descendant_pids(root: int) -> list[int] | None:
    """Descendants of ``root`` from Linux's /proc/PID/task/TID/children; None elsewhere.

    Microseconds, where psutil's ``children()`` reads every process of the machine.
    """
    found: list[int] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            if pid == root:
                return None
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as children:
                    kids = [int(k) for k in children.read().split()]
            except FileNotFoundError:
                if pid == root:
                    return None
                continue
            except OSError:
                continue
            found.extend(kids)
            pending.extend(kids)
    return found


def descendants() -> list[psutil.Process]:
    """Every descendant of this process (zombies included)."""
    pids = _descendant_pids(os.getpid())
    if pids is None:  # no /proc children files: psutil scans every process (slow)
        try:
            return psutil.Process().children(recursive=True)
        except psutil.Error:
            return []
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def infrastructure_pids() -> set[int]:
    """Processes that live across tests on purpose: never a test's leak.

    multiprocessing's resource tracker and fork server, and the servers of the
    session-scoped memcached pool.
    """
    import sys

    pids: set[int] = set()
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    if tracker is not None:
        pids.add(getattr(getattr(tracker, "_resource_tracker", None), "_pid", None) or 0)
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is not None:
        pids.add(getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None) or 0)
    memcached = sys.modules.get("pytest_concurrency.fixtures.memcached")
    owned = getattr(memcached, "owned_pids", None)
    if owned is not None:
        pids |= owned()
    pids.discard(0)
    return pids


class ProcessGuard:
    """The child processes started since :meth:`start` (the ``process_guard`` fixture)."""

    def __init__(self) -> None:
        self._before: set[tuple[int, float]] = set()

    @staticmethod
    def _key(process: psutil.Process) -> tuple[int, float]:
        try:
            return (process.pid, process.create_time())
        except psutil.Error:
            return (process.pid, 0.0)

    def _children(self) -> list[psutil.Process]:
        return descendants()

    def start(self) -> ProcessGuard:
        self._before = {self._key(p) for p in self._children()}
        return self

    def started(self) -> list[psutil.Process]:
        """Every descendant started since :meth:`start` that still exists (zombies included).

        Without :func:`infrastructure_pids` (and their descendants: a memcached
        server's own children are its business).
        """
        infrastructure = infrastructure_pids()
        found = []
        for process in self._children():
            if self._key(process) in self._before or process.pid in infrastructure:
                continue
            try:
                if process.ppid() in infrastructure:
                    continue
            except psutil.Error:
                continue
            found.append(process)
        return found

    def alive(self) -> list[psutil.Process]:
        """Those of :meth:`started` still running (not zombies)."""
        found = []
        for process in self.started():
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
            except psutil.Error:
                pass
        return found

    def stop_survivors(self, grace: float = 0.0) -> str | None:
        """Dump and kill every survivor (whole trees); the report, or None if none was left."""
        survivors = self.alive()
        if survivors and grace > 0:
            psutil.wait_procs(survivors, timeout=grace)
            survivors = self.alive()
        if not survivors:
            return None
        # Only the top of each tree: killing it kills its descendants.
        pids = {p.pid for p in survivors}
        tops = []
        for process in survivors:
            try:
                parent_pid = process.ppid()
            except psutil.Error:
                continue
            if parent_pid not in pids:
                tops.append(process)
        lines = [f"{len(survivors)} child process(es) started by the test were still running:"]
        lines.extend(describe_with_stacks(survivors))
        for process in tops:
            kill_tree(process)
        lines.append("They were killed, with their children. Join (or terminate and join) "
                     "every process you start, also when something fails.")
        return "\n".join(lines)
