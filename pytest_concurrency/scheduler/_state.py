"""Who is controlled right now, and what a controlled thread is: what every part shares.

``controlled`` maps the ident of each thread that runs under the active
scheduler to its record.  The patched primitives look the calling thread up
here on every call and behave as the real ones for any thread not in it, so
pytest, fixtures' threads and other tests never see the controlled versions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _real

if TYPE_CHECKING:
    from ._engine import Scheduler

controlled: dict[int, ThreadRecord] = {}
active: list[Scheduler] = []  # at most one: runs never overlap

# What install() found and will restore; the real-mode primitives are built from these.
found: dict[str, Any] = {}


RUNNABLE = "runnable"


BLOCKED = "blocked"


FINISHED = "finished"


class _Abort(BaseException):
    """Unwinds a controlled thread once the run is over (deadlock, failure, livelock)."""


def add_note(error: BaseException, note: str) -> None:
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:  # 3.10: pytest shows __notes__ too
        notes = getattr(error, "__notes__", None)
        if not isinstance(notes, list):
            notes = []
            try:
                error.__notes__ = notes
            except AttributeError:
                return
        notes.append(note)


class ThreadRecord:
    """One controlled thread, as the scheduler sees it."""

    __slots__ = (
        "index",
        "name",
        "thread",
        "scheduler",
        "gate",
        "exited",
        "ident",
        "state",
        "waiting_for",
        "deadline",
        "timed_out",
        "held",
        "root",
        "result",
        "blocked_at",
        "quiet",
        "function",
        "queued",
    )

    def __init__(self, scheduler: Scheduler, index: int, thread: threading.Thread, root: bool):
        self.scheduler = scheduler
        self.index = index
        self.thread = thread
        self.name = thread.name
        self.root = root
        # A started thread's gate; a callable of run() gets one (a kept
        # thread's) on its first turn.
        self.gate: Any = None
        if not root:
            self.gate = _real.allocate_lock()
            self.gate.acquire()
        self.exited = _real.allocate_lock()
        self.exited.acquire()
        self.ident: int | None = None
        self.state = RUNNABLE
        self.waiting_for: Any = None
        self.deadline: float | None = None
        self.timed_out = False
        self.held: list[Any] = []
        self.result: Any = None
        self.blocked_at: int = 0
        # Until its first step of user code, a thread's sync points (the stdlib's
        # Thread bootstrap setting its _started Event) are not preemption points.
        self.quiet = True
        self.function: Callable[[], Any] | None = None
        # The step since which it has been ready to run without running: at a
        # hand-off the one that has waited longest goes on, as in an OS's run queue.
        self.queued = scheduler.step

    def __repr__(self) -> str:
        return f"<thread {self.name} {self.state}>"

