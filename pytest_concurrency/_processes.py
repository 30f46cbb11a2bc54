"""Child processes of the pytest process: find the ones a test started, dump them, kill them.

Used by the ``process_guard`` fixture and by the hygiene check.  A forked child
dumps its Python stacks on ``SIGUSR1`` into a file we read, because
:func:`enable_child_dumps` registered ``faulthandler`` for that signal in the
pytest process before the fork::

    guard = ProcessGuard().start()
    ...                                   # the test starts processes
    report = guard.stop_survivors()       # None, or their dumps (they are killed)
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import tempfile
import time
from typing import IO

import psutil

# Generous: the child's faulthandler writes at once, but this machine may be busy.
DUMP_PATIENCE = 1.0
KILL_PATIENCE = 3.0

_DUMP_SIGNAL = getattr(signal, "SIGUSR1", None)
_dump_file: IO[bytes] | None = None


def enable_child_dumps() -> None:
    """Make forked children dump their stacks on SIGUSR1 into a file we can read."""
    global _dump_file
    if _dump_file is not None or _DUMP_SIGNAL is None:
        return
    if signal.getsignal(_DUMP_SIGNAL) not in (signal.SIG_DFL, None):
        return  # someone else uses SIGUSR1
    _dump_file = tempfile.TemporaryFile(prefix="pytest-concurrency-dumps-")  # noqa: SIM115 (open for the session)
    faulthandler.register(_DUMP_SIGNAL, file=_dump_file, all_threads=True, chain=False)


def disable_child_dumps() -> None:
    global _dump_file
    if _dump_file is None:
        return
    faulthandler.unregister(_DUMP_SIGNAL)
    _dump_file.close()
    _dump_file = None


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
    """The Python stacks of a forked child, via its inherited faulthandler; None if it can't."""
    if _dump_file is None or not _catches_dump_signal(process.pid):
        return None
    fd = _dump_file.fileno()
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
    return os.pread(fd, size - start, start).decode("utf-8", "replace").rstrip()


def describe(process: psutil.Process) -> str:
    try:
        with process.oneshot():
            command = " ".join(process.cmdline()) or process.name()
            return f"pid {process.pid} ({process.status()}): {command}"
    except psutil.Error:
        return f"pid {process.pid} (gone)"


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
        self._me_process: psutil.Process | None = None  # made when first needed: most tests never start
        self._before: set[tuple[int, float]] = set()

    @property
    def _me(self) -> psutil.Process:
        if self._me_process is None:
            self._me_process = psutil.Process()
        return self._me_process

    @staticmethod
    def _key(process: psutil.Process) -> tuple[int, float]:
        try:
            return (process.pid, process.create_time())
        except psutil.Error:
            return (process.pid, 0.0)

    def _children(self) -> list[psutil.Process]:
        pids = _descendant_pids(os.getpid())
        if pids is None:  # no /proc children files: psutil scans every process (slow)
            try:
                return self._me.children(recursive=True)
            except psutil.Error:
                return []
        found = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(pid))
        return found

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
        for process in survivors:
            lines.append(f"  {describe(process)}")
            stack = dump_stack(process)
            if stack:
                lines.extend("      " + line for line in stack.splitlines())
            else:
                lines.append("      (no Python stack: the process was not forked from pytest)")
        for process in tops:
            kill_tree(process)
        lines.append("They were killed, with their children. Join (or terminate and join) "
                     "every process you start, also when something fails.")
        return "\n".join(lines)
