"""The controlled scheduler: threads that run one at a time, in an order a schedule decides.

Private machinery behind :func:`pytest_concurrency.schedules`; test authors use
``schedule.run(...)``.  The parts:

- ``_engine``: the scheduler itself (baton passing, blocking, virtual time,
  deadlock and livelock detection);
- ``_tracing``: preemption points at each bytecode of user code;
- ``_primitives``: Lock, RLock and Condition that obey the scheduler;
- ``_patching``: putting them (and Thread.start/join, time) in place;
- ``_import_time``: primitives made before the patches, swapped for a run;
- ``_workers``: the OS threads kept between runs, made fresh for each callable;
- ``_report``: the interleaving, deadlock and livelock stories.
"""

from __future__ import annotations

from ._engine import Decisions, Scheduler, UncontrolledBlockingError
from ._patching import ensure_installed, installed, uninstall
from ._report import format_story
from ._tracing import is_user_file

__all__ = [
    "Decisions",
    "Scheduler",
    "UncontrolledBlockingError",
    "ensure_installed",
    "format_story",
    "installed",
    "is_user_file",
    "uninstall",
]
