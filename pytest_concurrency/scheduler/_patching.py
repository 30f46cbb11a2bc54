"""Putting the controlled primitives in place, and taking them out again.

Protocol shared with the other parts that patch ``threading`` (the real-run
deadlock detector): patch by assignment, save exactly what was found, restore
exactly that.  Every replacement dispatches on the calling thread, so only
threads under an active :class:`~._engine.Scheduler` see controlled
behaviour; every other thread gets what was found.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
import time
from typing import Any

from . import _primitives, _real, _state, _tracing

_controlled = _state.controlled
_get_ident = _real.get_ident

# The standard library's own classes, built from threading.Lock/Condition at call time.
_STDLIB = {
    "Event": threading.Event,
    "Semaphore": threading.Semaphore,
    "BoundedSemaphore": threading.BoundedSemaphore,
    "Barrier": threading.Barrier,
    "Timer": threading.Timer,
}


def _found(name: str) -> Any:
    return _state.found[name]


# ----------------------------------------------------------------- time


def sleep(seconds: float) -> None:
    record = _controlled.get(_get_ident())
    if record is None:
        return _found("time.sleep")(seconds)
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    scheduler = record.scheduler
    scheduler.sync_point(record, "time.sleep")
    if seconds > 0:
        scheduler.block(record, "sleep", scheduler.clock + seconds)


def monotonic() -> float:
    record = _controlled.get(_get_ident())
    if record is None:
        return _found("time.monotonic")()
    return record.scheduler.monotonic0 + record.scheduler.clock


def wall_time() -> float:
    record = _controlled.get(_get_ident())
    if record is None:
        return _found("time.time")()
    return record.scheduler.wall0 + record.scheduler.clock


# -------------------------------------------------------------- threads

_DEFAULT_NAME = re.compile(r"^Thread-\d+")


def thread_start(self: threading.Thread) -> None:
    record = _controlled.get(_get_ident())
    if record is None:
        return _found("Thread.start")(self)
    scheduler = record.scheduler
    if not self._initialized:  # type: ignore[attr-defined]
        raise RuntimeError("thread.__init__() not called")
    if self in scheduler.by_thread or self._started.is_set():  # type: ignore[attr-defined]
        raise RuntimeError("threads can only be started once")
    scheduler.sync_point(record, "Thread.start")
    child = scheduler._new_record(self, root=False)
    # threading numbers unnamed threads process-wide (Thread-57): in the report,
    # number them within the run, so a replay tells the same story.
    spawned = sum(1 for t in scheduler.threads if not t.root)
    child.name = _DEFAULT_NAME.sub(f"Thread-{spawned}", self.name, count=1)
    scheduler._spawn(child)


def thread_join(self: threading.Thread, timeout: float | None = None) -> None:
    record = _controlled.get(_get_ident())
    if record is None:
        return _found("Thread.join")(self, timeout)
    scheduler = record.scheduler
    target = scheduler.by_thread.get(self)
    if target is record:
        raise RuntimeError("cannot join current thread")
    if target is None:
        if not self._started.is_set():  # type: ignore[attr-defined]
            raise RuntimeError("cannot join thread before it is started")
        if not _found("Thread.is_alive")(self):
            return None
        raise RuntimeError(
            f"schedule.run(): joining {self.name}, a thread started outside the run, from "
            "inside it: the scheduler cannot wait for it. Start it inside the run, or join "
            "it after run() returns."
        )
    scheduler.sync_point(record, "Thread.join")
    deadline = None if timeout is None else scheduler.clock + max(timeout, 0.0)
    while target.state != "finished":
        if scheduler.block(record, target, deadline):
            return None
    return None


def thread_is_alive(self: threading.Thread) -> bool:
    if _state.active:
        target = _state.active[0].by_thread.get(self)
        if target is not None:
            return target.state != "finished"
    return _found("Thread.is_alive")(self)


def excepthook(args: Any) -> None:
    record = _controlled.get(_get_ident())
    if record is None:
        return _found("threading.excepthook")(args)
    record.scheduler.thread_raised(record, args.exc_value)


# ------------------------------------------------ real I/O: a clear error

_BLOCKING_EVENTS = {
    "socket.connect": "a socket connection",
    "socket.bind": "a socket bind",
    "socket.sendto": "a socket send",
    "socket.sendmsg": "a socket send",
    "socket.getaddrinfo": "a DNS lookup",
    "socket.gethostbyname": "a DNS lookup",
    "subprocess.Popen": "a subprocess",
    "os.system": "os.system()",
    "os.posix_spawn": "a child process",
    "os.fork": "os.fork()",
    "os.exec": "os.exec*()",
    "time.sleep": "time.sleep imported before the test (`from time import sleep`)",
}
_audit_hook_added = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _BLOCKING_EVENTS and _get_ident() in _controlled and _state.active:
        if event == "time.sleep" and _state.found.get("in_virtual_sleep"):
            return
        what = _BLOCKING_EVENTS[event]
        raise RuntimeError(
            f"{what} inside schedule.run(): real blocking calls are outside the "
            "scheduler's control and would make the run hang or depend on luck. "
            "Do the I/O before or after run(), or give the code under test a fake "
            "(an in-memory object) for the race test"
            + (" (use `import time` and call time.sleep())" if event == "time.sleep" else "")
            + "."
        )


# ------------------------------------------------------ install/uninstall

_TARGETS: list[tuple[Any, str, Any]] = [
    (threading, "Lock", _primitives.Lock),
    (threading, "RLock", _primitives.RLock),
    (threading, "Condition", _primitives.Condition),
    (threading.Thread, "start", thread_start),
    (threading.Thread, "join", thread_join),
    (threading.Thread, "is_alive", thread_is_alive),
    (threading, "excepthook", excepthook),
    (time, "sleep", sleep),
    (time, "monotonic", monotonic),
    (time, "time", wall_time),
]
if hasattr(threading, "_time"):
    _TARGETS.append((threading, "_time", monotonic))
if hasattr(queue, "time"):
    _TARGETS.append((queue, "time", monotonic))
if hasattr(queue, "_PySimpleQueue"):
    _TARGETS.append((queue, "SimpleQueue", queue._PySimpleQueue))
for _name, _cls in _STDLIB.items():
    _TARGETS.append((threading, _name, _cls))


def _key(owner: Any, name: str) -> str:
    if owner is threading:
        return name if name in ("Lock", "RLock", "Condition") else f"threading.{name}"
    if owner is threading.Thread:
        return f"Thread.{name}"
    return f"{owner.__name__}.{name}"


def installed() -> bool:
    return bool(_state.found.get("installed"))


def ensure_installed() -> bool:
    """Install the patches unless they are in; True if this call installed them."""
    global _audit_hook_added
    if installed():
        return False
    for owner, name, replacement in _TARGETS:
        _state.found[_key(owner, name)] = getattr(owner, name)
        setattr(owner, name, replacement)
    _state.found["installed"] = True
    if not _audit_hook_added:
        sys.addaudithook(_audit)
        _audit_hook_added = True
    return True


def uninstall() -> None:
    """Restore exactly what :func:`ensure_installed` found."""
    if not installed():
        return
    if _state.active:
        raise RuntimeError("cannot remove the scheduler's patches during schedule.run()")
    for owner, name, replacement in reversed(_TARGETS):
        key = _key(owner, name)
        current = getattr(owner, name)
        if current is replacement:
            setattr(owner, name, _state.found[key])
        # else someone patched over us after we installed: leave theirs in place;
        # they will restore ours, which dispatches to the real one anyway.
    _state.found["installed"] = False
    _tracing.disarm_monitoring()  # armed for as long as the patches are in (3.12+)


# A schedule test keeps the patches from its first draw to the end of its
# teardown: objects its fixtures and body make (a Counter and its Lock) must
# be controllable inside ``run``.
_installed_for_test = False


def install_for_test() -> None:
    """Patch threading as soon as a schedule is drawn, until :func:`end_of_test`."""
    global _installed_for_test
    if ensure_installed():
        _installed_for_test = True


def installed_for_test() -> bool:
    """Whether the running test's schedules put the patches in (and will take them out)."""
    return _installed_for_test


def end_of_test() -> None:
    """Take out the patches a schedule test put in (called after its teardown)."""
    global _installed_for_test
    if _installed_for_test:
        _installed_for_test = False
        uninstall()
