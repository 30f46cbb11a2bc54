"""gevent in real runs: LoopExit as a deadlock, and greenlets that block the event loop.

Used by :mod:`pytest_concurrency.deadlock` only when ``gevent`` is already
imported (this module never imports it by itself), in plain runs and inside
the fresh interpreter of ``isolated`` tests, where ``monkey.patch_all()`` ran
first.

- **LoopExit** ("This operation would block forever"): the thread's hub found
  nothing left to run, no timer, no I/O, while greenlets still wait: every one
  of them waits for something nobody will deliver.  :func:`loop_exit_report`
  turns it into a deadlock report with the greenlet tree (each greenlet with
  the line it waits at).
- **A blocked event loop**: gevent's own monitor thread
  (``gevent.config.monitor_thread``; a real OS thread also under monkey
  patching) checks every :data:`MAX_BLOCKING` seconds whether the hub's thread
  switched greenlets since the last check.  We replace its printing check by
  :func:`_check`, which records, for the test that runs, the greenlet that ran
  that long without yielding and its stack at that moment.  The test's own
  greenlet doing ordinary work counts only while other greenlets, timers or
  I/O wait for the loop (``loop.activecnt``): a test that uses gevent once
  does not make every later test "block the loop".
"""

from __future__ import annotations

import sys
import time
from types import FrameType
from typing import Any

from .._frames import format_entries, frame_entries, traceback_entries

# A greenlet that runs this long without yielding blocks every other greenlet.
MAX_BLOCKING = 0.5
# How often the monitor looks: a block is reported once it spans checks MAX_BLOCKING apart.
CHECK_EVERY = 0.1


class Blocked:
    """One greenlet seen running without yielding, at one or more checks in a row."""

    __slots__ = ("greenlet", "stack", "longest")

    def __init__(self, greenlet: str, stack: str, longest: float) -> None:
        self.greenlet = greenlet
        self.stack = stack
        self.longest = longest  # seconds without a switch, as last seen (at least)


class Watch:
    """What the monitor found during one test."""

    __slots__ = ("blocked", "reported")

    def __init__(self) -> None:
        self.blocked: dict[int, Blocked] = {}
        self.reported = 0


_current: Watch | None = None
_configured = False
_patched_monitors: set[int] = set()
# Per adopted monitor: when its check last saw a switch (restarted by each test).
_last_switches: list[list[float]] = []


def _gevent() -> Any:
    return sys.modules.get("gevent")


def begin() -> Watch | None:
    """Start watching the test that begins now, if gevent is imported."""
    global _current
    if _gevent() is None:
        return None
    _configure()
    now = time.monotonic()
    for last_switch in _last_switches:
        last_switch[0] = now  # what ran before the test (pytest itself) is not the test's block
    _current = Watch()
    return _current


def end() -> None:
    global _current
    _current = None


def _configure() -> None:
    """Turn gevent's monitor thread on, with our check instead of its printing one."""
    global _configured
    if _configured:
        _start_for_existing_hub()
        return
    try:
        import gevent
        from gevent import events
    except ImportError:  # a half-installed gevent: nothing to watch
        return
    _configured = True
    config = gevent.config
    try:
        config.monitor_thread = True
        # The period of the monitor's first check (ours, once adopted).
        config.max_blocking_time = CHECK_EVERY
    except Exception:  # an unknown gevent version: leave its config alone
        return
    subscribers = getattr(events, "subscribers", None)
    if subscribers is not None and _on_event not in subscribers:
        subscribers.append(_on_event)
    _start_for_existing_hub()


def _start_for_existing_hub() -> None:
    """A hub created before we were configured has no monitor yet: start it (in its thread)."""
    try:
        from gevent._hub_local import get_hub_if_exists
    except ImportError:
        return
    hub = get_hub_if_exists()
    if hub is None or getattr(hub, "dead", False):
        return
    monitor = hub.start_periodic_monitoring_thread()
    if monitor is not None:
        _adopt(monitor)


def _on_event(event: Any) -> None:
    from gevent.events import PeriodicMonitorThreadStartedEvent

    if isinstance(event, PeriodicMonitorThreadStartedEvent):
        _adopt(event.monitor)


def _adopt(monitor: Any) -> None:
    """Swap the monitor's own blocking check (which prints) for ours (which records)."""
    if id(monitor) in _patched_monitors:
        return
    tracer = getattr(monitor, "_greenlet_tracer", None)
    if tracer is None or not hasattr(tracer, "did_block_hub"):
        return  # a gevent we do not know: its own check stays, printing to stderr

    last_switch = [time.monotonic()]

    def check(hub: Any) -> None:
        _check(tracer, hub, last_switch)

    try:
        monitor.add_monitoring_function(monitor.monitor_blocking, None)
        monitor.add_monitoring_function(check, CHECK_EVERY)
    except Exception:
        return
    _patched_monitors.add(id(monitor))
    _last_switches.append(last_switch)


def _check(tracer: Any, hub: Any, last_switch: list[float]) -> None:
    """In gevent's monitor thread: did a greenlet run for MAX_BLOCKING s without yielding?

    ``last_switch``: when a check last saw a switch (or nothing running); the
    greenlet found running now has run at least since then.
    """
    now = time.monotonic()
    found = tracer.did_block_hub(hub)
    if not found:
        last_switch[0] = now
        return
    watch = _current
    if watch is None or hub is None or now - last_switch[0] < MAX_BLOCKING:
        return
    active = found[1]
    # A running greenlet has no saved frame; one with a frame is suspended, and
    # the tracer is stale (the test replaced greenlet's trace function for a while).
    if getattr(active, "gr_frame", None) is not None or getattr(active, "dead", True):
        return
    frame = sys._current_frames().get(hub.thread_ident)
    if frame is None or _in_hub(frame):
        return
    if getattr(active, "parent", None) is None:
        # The thread's main greenlet (the test itself): a block only if someone waits for the loop.
        loop = getattr(hub, "loop", None)
        if not getattr(loop, "activecnt", 1):
            return
    entry = watch.blocked.get(id(active))
    if entry is not None:
        entry.longest = max(entry.longest, now - last_switch[0])
        return
    watch.blocked[id(active)] = Blocked(_name(active), format_stack(frame, "    "), now - last_switch[0])


def _in_hub(frame: FrameType) -> bool:
    return frame.f_code.co_name == "run" and frame.f_code.co_filename.endswith(("hub.py", "hub.pyc"))


def _name(glet: Any) -> str:
    if getattr(glet, "parent", None) is None:
        return "the test's main greenlet"
    name = getattr(glet, "name", None)
    target = getattr(glet, "_run", None) or getattr(glet, "run", None)
    func = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    label = f"greenlet {name!r}" if name else f"greenlet at 0x{id(glet):x}"
    return f"{label} running {func}()" if func else label


def _plumbing(filename: str) -> bool:
    # gevent's and greenlet's Python files, and the frames of their compiled parts ("src/gevent/...").
    return filename.startswith(("src/gevent/", "src/greenlet/")) or any(
        part in filename for part in ("/gevent/", "/greenlet/", "\\gevent\\", "\\greenlet\\")
    )


def format_stack(frame: FrameType | None, indent: str = "      ") -> str:
    """The user's part of a greenlet's stack (no gevent, greenlet, pytest or plugin frames)."""
    if frame is None:
        return indent + "(no stack)\n"
    return format_entries(frame_entries(frame), indent, _plumbing)


def blocked_report(watch: Watch) -> str | None:
    """The greenlets that blocked the loop during the test, once; None when there are no new ones."""
    entries = list(watch.blocked.values())[watch.reported:]
    if not entries:
        return None
    watch.reported += len(entries)
    parts = [
        f"gevent's event loop was blocked: {len(entries)} greenlet(s) ran for more than "
        f"{MAX_BLOCKING:g} s without yielding, and no other greenlet could run meanwhile. "
        "A blocking call (time.sleep, a socket or urllib without monkey.patch_all(), a "
        "long computation) must give the loop a turn: gevent.sleep, gevent's own "
        "modules, or monkey.patch_all() before anything else is imported.",
    ]
    for entry in entries:
        parts.append("")
        parts.append(f"  {entry.greenlet} blocked the loop for at least {entry.longest:.1f} s, here:")
        parts.append(entry.stack.rstrip("\n"))
    return "\n".join(parts)


# ---------------------------------------------------------------- LoopExit


def is_loop_exit(error: BaseException) -> bool:
    gevent = _gevent()
    if gevent is None:
        return False
    loop_exit = getattr(getattr(gevent, "exceptions", None), "LoopExit", None)
    return loop_exit is not None and isinstance(error, loop_exit)


def loop_exit_report(error: BaseException) -> str:
    """A deadlock report for gevent's LoopExit, with the tree of the greenlets still waiting."""
    head = (
        "deadlock: gevent's event loop has nothing left to run (LoopExit: \"This operation "
        "would block forever\"): every greenlet of this thread waits, and no other greenlet, "
        "timer or I/O will ever wake one of them: a lost wakeup (an Event set, a Queue put "
        "or a lock released before the wait, or never), or a join on a greenlet that waits "
        "forever."
    )
    lines = [head, "", "  the test's main greenlet waits at:"]
    lines.append(format_entries(traceback_entries(error.__traceback__), "    ", _plumbing).rstrip("\n"))
    waiting: list[Any] = []
    tree = _greenlet_tree(waiting)
    if tree:
        lines.extend(["", "Greenlet tree (who spawned whom; each waits at the last line shown):", *tree])
    else:
        lines.extend(["", "No other greenlet is alive: the test's greenlet waits for itself."])
    if _kill(waiting):
        lines.extend(["", "Each of these greenlets was killed (they could never run again)."])
    return "\n".join(lines)


def _kill(greenlets: list[Any]) -> bool:
    """Kill greenlets that can never run again (after a LoopExit); whether all died."""
    gevent = _gevent()
    if not greenlets or gevent is None:
        return False
    try:
        gevent.killall(greenlets, block=True, timeout=1.0)
    except Exception:
        return False
    return all(g.dead for g in greenlets)


def _greenlet_tree(waiting: list[Any]) -> list[str]:
    """The gevent greenlets of this thread (not the hub, not raw greenlets), as a spawn tree."""
    try:
        from gevent.util import GreenletTree
    except ImportError:
        return []
    try:
        root = GreenletTree.current_tree()
    except Exception:
        return []
    out: list[str] = []
    kind = _gevent().Greenlet

    def render(tree: Any, depth: int) -> None:
        for child in getattr(tree, "child_trees", ()):
            glet = child.greenlet
            if _is_hub(glet):
                render(child, depth)
                continue
            dead = getattr(glet, "dead", False) or not isinstance(glet, kind)
            if not dead:
                waiting.append(glet)
                indent = "  " + "    " * depth
                out.append(f"{indent}+ {_name(glet)}")
                out.append(format_stack(getattr(glet, "gr_frame", None), indent + "    ").rstrip("\n"))
            render(child, depth + (0 if dead else 1))

    render(root, 0)
    return out


def _is_hub(glet: Any) -> bool:
    hub_type = getattr(sys.modules.get("gevent.hub"), "Hub", None)
    return hub_type is not None and isinstance(glet, hub_type)
