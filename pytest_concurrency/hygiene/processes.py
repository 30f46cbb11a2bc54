"""The one process watch: which child processes were started since X, which still run, their stacks, kill them.

:class:`ProcessWatch` is used by the ``process_guard`` fixture (as
:class:`ProcessGuard`), by the hygiene check, and by the ``children`` fixture
and ``within()`` of :mod:`pytest_concurrency.testing`; :func:`is_running` and
:func:`still_running` say whether a process still runs, zombies excluded.

A child dumps its Python stacks on ``SIGUSR1`` into a file we read:

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

    watch = ProcessWatch()                # from now on
    ...                                   # the test starts processes
    watch.started()                       # every one of them that still exists (zombies too)
    watch.alive()                         # those still running
    report = watch.stop_survivors()       # None, or their dumps (they are killed with their trees)
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil

from .._frames import without_plugin_frames

# Generous: the child's faulthandler writes at once, but this machine may be busy.
DUMP_PATIENCE = 1.0
KILL_PATIENCE = 3.0
# A leftover multiprocessing pool gets this long to terminate itself before its workers are killed.
POOL_PATIENCE = 30.0

# The signal a child dumps its stacks on (faulthandler); 0 where there is none (Windows).
_DUMP_SIGNAL: int = getattr(signal, "SIGUSR1", 0)
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
    if _dump_file is not None or not _DUMP_SIGNAL:
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
        return (faulthandler.register, (_DUMP_SIGNAL, _OpenForAppending(self.path), True, False))


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
            stack = without_plugin_frames(stack)
            lines.extend("      " + line for line in stack.splitlines())
        else:
            lines.append("      (no Python stack: it does not answer SIGUSR1 with a dump; "
                         "not a Python child started by multiprocessing during the test?)")
    return lines


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


def descendants(root: int | None = None) -> list[psutil.Process]:
    """Every descendant of ``root`` (default: this process), zombies included."""
    root = os.getpid() if root is None else root
    pids = _descendant_pids(root)
    if pids is None:  # no /proc children files: psutil scans every process (slow)
        try:
            return psutil.Process(root).children(recursive=True)
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
    pids: set[int] = set()
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    if tracker is not None:
        pids.add(getattr(getattr(tracker, "_resource_tracker", None), "_pid", None) or 0)
    pids.add(_forkserver_pid())
    memcached = sys.modules.get("pytest_concurrency.fixtures.memcached")
    owned = getattr(memcached, "owned_pids", None)
    if owned is not None:
        pids |= owned()
    pids.discard(0)
    return pids


def _forkserver_pid() -> int:
    """multiprocessing's fork server, 0 if none: the processes it forks are the test's."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    if forkserver is None:
        return 0
    return getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None) or 0


# ---------------------------------------------------------------- is it still running?


def status_of(process: psutil.Process) -> str:
    """The status psutil reports (e.g. "zombie"), or "gone"."""
    try:
        return process.status()
    except psutil.NoSuchProcess:
        return "gone"


def is_running(process: psutil.Process) -> bool:
    """Not gone and not a zombie (a finished child nobody reaped yet).

    A pid reused since ``process`` was seen does not count (psutil compares start times).
    """
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def still_running(pids: Iterable[int], patience: float = 0.0) -> list[int]:
    """Those of ``pids`` still running (zombies excluded), after waiting up to ``patience`` seconds for them to end."""
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(pid))
    return [p.pid for p in _wait_until_ended(processes, time.monotonic() + patience)]


def _wait_until_ended(processes: list[psutil.Process], deadline: float) -> list[psutil.Process]:
    """Those of ``processes`` still running at ``deadline`` (or sooner, once none is); reaps none."""
    while True:
        running = [p for p in processes if is_running(p)]
        if not running or time.monotonic() >= deadline:
            return running
        processes = running
        time.sleep(0.02)


# ---------------------------------------------------------------- killing


def kill_all(processes: Iterable[psutil.Process], patience: float = KILL_PATIENCE) -> None:
    """Kill ``processes`` and all their descendants, and reap those that are our children.

    A ``multiprocessing`` pool that owns one of them is terminated by its own
    pool object first: a worker killed while it holds the pool's queue lock
    makes a later ``terminate()`` (the pool's finalizer, at exit) hang.  The
    children ``multiprocessing`` started are reaped by joining them, so that
    their ``Process`` objects know they ended.
    """
    family: dict[int, psutil.Process] = {}
    for process in processes:
        for member in (process, *descendants(process.pid)):
            family.setdefault(member.pid, member)
    if not family:
        return
    _terminate_pools_owning(set(family))
    deadline = time.monotonic() + patience
    for member in family.values():
        with contextlib.suppress(psutil.Error):
            member.kill()
    _reap(list(family.values()), deadline)


def _terminate_pools_owning(pids: set[int]) -> None:
    pool_module = sys.modules.get("multiprocessing.pool")
    if pool_module is None:
        return
    import gc

    for pool in [o for o in gc.get_objects() if isinstance(o, pool_module.Pool)]:
        workers = {getattr(worker, "pid", None) for worker in list(getattr(pool, "_pool", None) or ())}
        if workers & pids:
            stopper = threading.Thread(target=pool.terminate, name="terminating a leftover pool", daemon=True)
            stopper.start()
            stopper.join(POOL_PATIENCE)


def _reap(members: list[psutil.Process], deadline: float) -> None:
    """Wait (until ``deadline``) for ``members`` to end; reap those that are our children."""
    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    pids = {member.pid for member in members}
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None:
        for child in multiprocessing.active_children():  # reaps the ones that have ended
            if child.pid in pids:
                child.join(left())
    me = os.getpid()
    ours: list[psutil.Process] = []
    others: list[psutil.Process] = []
    for member in members:
        with contextlib.suppress(psutil.Error):
            (ours if member.ppid() == me else others).append(member)
    if ours:
        psutil.wait_procs(ours, timeout=left())  # waitpid: reaps them
    # The others are reaped by their parents (or, once those are gone, by init): a zombie has ended.
    _wait_until_ended(others, deadline)


# ---------------------------------------------------------------- the watch


def _key(process: psutil.Process) -> tuple[int, float]:
    """Who a process is: its pid alone could be reused by another one."""
    try:
        return (process.pid, process.create_time())
    except psutil.Error:
        return (process.pid, 0.0)


class ProcessWatch:
    """The child processes started since the watch began: found, dumped, killed.

    The one implementation behind the ``process_guard`` fixture (as
    :class:`ProcessGuard`), the hygiene check, and the ``children`` fixture and
    ``within()`` of :mod:`pytest_concurrency.testing`.  Every descendant of
    the pytest process counts (also grandchildren, and zombies until reaped),
    except :func:`infrastructure_pids` and what those servers start.
    """

    def __init__(self) -> None:
        self._before = {_key(p) for p in descendants()}

    def start(self) -> ProcessWatch:
        """Begin again from now (the watch begins when it is made); returns the watch."""
        self._before = {_key(p) for p in descendants()}
        return self

    def started(self) -> list[psutil.Process]:
        """Every descendant started since the watch began that still exists (zombies included)."""
        infrastructure = infrastructure_pids()
        servers = infrastructure - {_forkserver_pid()}  # what the fork server forks is the test's
        found = []
        for process in descendants():
            if process.pid in infrastructure or _key(process) in self._before:
                continue
            try:
                if process.ppid() in servers:
                    continue  # a memcached server's own children are its business
            except psutil.Error:
                continue
            found.append(process)
        return found

    def alive(self) -> list[psutil.Process]:
        """Those of :meth:`started` still running (zombies excluded)."""
        return [p for p in self.started() if is_running(p)]

    def kill(self, processes: list[psutil.Process] | None = None) -> None:
        """Kill ``processes`` (default: all :meth:`started`, zombies reaped) with their trees."""
        kill_all(self.started() if processes is None else processes)

    def stop_survivors(self, grace: float = 0.0) -> str | None:
        """Dump and kill every survivor (whole trees); the report, or None if none was left."""
        survivors = self.alive()
        if survivors and grace > 0:
            _wait_until_ended(survivors, time.monotonic() + grace)
            survivors = self.alive()
        if not survivors:
            return None
        lines = [f"{len(survivors)} child process(es) started by the test were still running:"]
        lines.extend(describe_with_stacks(survivors))
        self.kill(survivors)
        lines.append("They were killed, with their children. Join (or terminate and join) "
                     "every process you start, also when something fails.")
        return "\n".join(lines)


# The name the ``process_guard`` fixture gives the watch.
ProcessGuard = ProcessWatch
