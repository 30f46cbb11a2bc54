"""Between the supervisor and a graded child: the launcher, so that the child cannot reach it.

Run by :mod:`.supervisor` as ``python -I -S -B launcher.py STATUS_FD isolate|share -- COMMAND...``
(standard library only, so that it starts in milliseconds)::

    supervisor ── launcher ──┬─ helper ── init (pid 1 of a new PID namespace, its own /proc)
                             │               └─ relay ── COMMAND (pytest, in its own session)
                             └─ (no namespace: the launcher is the relay) ── COMMAND

- **Its own PID namespace** (when the kernel lets us: root, Linux): the
  graded process sees only the processes of its namespace, in a private mount
  namespace with its own ``/proc``.  ``kill(-1, SIGKILL)`` ("every process it
  can signal") reaches only its namespace; the supervisor, the other
  exercises and anything else on the machine are out of sight.  When the
  namespace's init exits, the kernel kills everything left in it.
- **A parent that may die**: the graded process's parent is the relay, not
  the supervisor; ``kill(getppid(), SIGKILL)`` kills the relay, which the
  init (or, without a namespace, the supervisor) reports, and the graded
  process dies with it (``PR_SET_PDEATHSIG``).
- **Its own session and process group**: ``killpg(0, ...)`` / ``kill(0, ...)``
  reach only the graded process and what it started.

The launcher writes what happened to ``STATUS_FD`` (a pipe only the supervisor
reads, closed in the graded process), one JSON line each::

    {"confined": true}                  the namespace is in place (or false)
    {"exit": 0} / {"signal": 11}        how the graded process ended
    {"parent_killed": 9}                its parent was killed (by the graded code)

then exits the way the graded process did (its status, or the same signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SETUP_FAILED = 121  # the namespace's init could not mount its /proc: run without a namespace

_libc = None


def load_libc() -> ctypes.CDLL | None:
    """The C library (Linux only), loaded once: prctl, unshare, mount."""
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
    return _libc


def _status(fd: int, **data: object) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (json.dumps(data) + "\n").encode())


def _enter_namespace() -> bool:
    """A private mount namespace, then a new PID namespace for the next child; False if refused.

    The mounts are made private *before* anything is mounted, so that the new
    ``/proc`` can never propagate to the rest of the machine.
    """
    libc = load_libc()
    if libc is None:
        return False
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False  # shared mounts: a /proc mounted now could leak out, so no namespace
    return libc.unshare(CLONE_NEWPID) == 0


def _exec_graded(command: list[str], parent: int) -> None:
    """In the forked child: its own session, dies with its parent, then becomes ``command``."""
    try:
        os.setsid()
        libc = load_libc()
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the death signal was armed
            os._exit(1)
        os.execv(command[0], command)
    except BaseException:
        pass
    os._exit(127)


def _describe(wait_status: int) -> dict[str, int]:
    if os.WIFSIGNALED(wait_status):
        return {"signal": os.WTERMSIG(wait_status)}
    return {"exit": os.waitstatus_to_exitcode(wait_status)}


def _relay(command: list[str], status_fd: int) -> dict[str, int]:
    """Start ``command``, reap every child until it ends; how it ended."""
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        _exec_graded(command, me)
    while True:
        try:
            done, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            return {"exit": 1}
        except InterruptedError:
            continue
        if done == pid:
            outcome = _describe(wait_status)
            _status(status_fd, **outcome)
            return outcome


def _init(command: list[str], status_fd: int) -> int:
    """pid 1 of the namespace: its own /proc, the relay under it, every orphan reaped."""
    libc = load_libc()
    assert libc is not None
    if libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        return SETUP_FAILED
    _status(status_fd, confined=True)
    relay = os.fork()
    if relay == 0:
        outcome = _relay(command, status_fd)
        os._exit(_exit_code(outcome))
    while True:
        try:
            done, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if done == relay:
            if os.WIFSIGNALED(wait_status):  # killed from inside: by the graded code
                _status(status_fd, parent_killed=os.WTERMSIG(wait_status))
                return 128 + os.WTERMSIG(wait_status)
            return os.waitstatus_to_exitcode(wait_status)


def _exit_code(outcome: dict[str, int]) -> int:
    if "signal" in outcome:
        return 128 + outcome["signal"]
    return outcome["exit"] & 0xFF


def _end_like(outcome: dict[str, int]) -> None:
    """Exit the way the graded process did, so that the exit status alone also tells."""
    number = outcome.get("signal")
    if number:
        try:
            if number not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        except (OSError, ValueError):
            pass
        os._exit(128 + number)
    os._exit(outcome.get("exit", 1) & 0xFF)


def _forked(run: Callable[[], int]) -> int:
    """Run ``run`` in a forked process and wait for it; its wait status (its result is the
    exit code, and anything it raises is SETUP_FAILED)."""
    pid = os.fork()
    if pid == 0:
        try:
            code = run()
        except BaseException:
            code = SETUP_FAILED
        os._exit(code)
    return os.waitpid(pid, 0)[1]  # retried on EINTR by Python itself (PEP 475)


def _confined(command: list[str], status_fd: int) -> int:
    """In a forked helper: enter the namespaces, run the init there; its exit code."""
    if not _enter_namespace():
        return SETUP_FAILED
    wait_status = _forked(lambda: _init(command, status_fd))
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def main(argv: list[str]) -> None:
    status_fd = int(argv[1])
    isolate = argv[2] == "isolate"
    command = argv[argv.index("--") + 1:]
    os.set_inheritable(status_fd, False)  # the graded process never holds it
    libc = load_libc()
    if libc is not None:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if isolate and libc is not None:
        # A helper enters the namespaces, so that this process can still run the
        # command without them when the kernel refuses.
        code = os.waitstatus_to_exitcode(_forked(lambda: _confined(command, status_fd)))
        if code != SETUP_FAILED:
            _end_like({"signal": code - 128} if code > 128 else
                      {"signal": -code} if code < 0 else {"exit": code})
    _status(status_fd, confined=False)
    _end_like(_relay(command, status_fd))


if __name__ == "__main__":
    main(sys.argv)
