"""Kills a pytest session's memcached servers when that session ends, however it ends.

Run as a script (``python _memcached_watchdog.py``) by the memcached fixtures,
once per session, in its own session; it forks once and says its pid, so that
it is nobody's child.  The session writes one line per
server on the watchdog's stdin::

    watch 12345      a server was started with this pid
    forget 12345     that server was stopped by the session itself

The watchdog does nothing else until stdin reaches end of file, which happens
when the session closes its end of the pipe: at a normal end, but also when
pytest is interrupted, crashes, or is killed with SIGKILL (the kernel closes
the pipe of a dead process).  Then every server still watched is killed.

Only the standard library and psutil (a dependency of the package) are used:
the script must start without importing pytest or the plugin.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is a dependency, but never fail to clean up
    psutil = None


def _remember(pid: int):
    """A handle that kills ``pid`` later, and never a newer process that reuses the pid."""
    if psutil is None:
        return pid
    try:
        return psutil.Process(pid)  # records the creation time, checked again by kill()
    except psutil.Error:
        return None


def _kill(handle) -> None:
    if handle is None:
        return
    if psutil is None:
        with contextlib.suppress(OSError):
            os.kill(handle, signal.SIGKILL)
        return
    with contextlib.suppress(psutil.Error):
        if handle.is_running():
            handle.kill()


def detach() -> None:
    """Fork; the first process says the second one's pid and exits.

    The watchdog is then nobody's child in the session that started it, so
    that a per-test check for leaked child processes does not see it.
    """
    if not hasattr(os, "fork"):
        print(os.getpid(), flush=True)
        return
    child = os.fork()
    if child:
        print(child, flush=True)
        os._exit(0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main() -> None:
    detach()
    # Ctrl-C in a terminal reaches the whole foreground process group: the
    # watchdog must outlive the session it cleans up after.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: dict[int, object] = {}
    for line in sys.stdin:
        verb, _, pid_text = line.strip().partition(" ")
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if verb == "watch":
            watched[pid] = _remember(pid)
        elif verb == "forget":
            watched.pop(pid, None)
    for handle in watched.values():
        _kill(handle)


if __name__ == "__main__":
    main()
