"""The controlled scheduler: threads that run one at a time, in an order a schedule decides.

Public (re-exported by :mod:`pytest_concurrency`): :class:`Schedule` (``schedule.py``),
:func:`schedules` (``strategy.py``), :func:`explore_all` and :class:`Exploration`
(``explore.py``).  The pytest part is ``plugin.py``.  Private machinery:

- ``_engine``: the scheduler itself (baton passing, blocking, virtual time,
  deadlock and livelock detection);
- ``_tracing``: preemption points at each bytecode of user code;
- ``_primitives``: Lock, RLock and Condition that obey the scheduler;
- ``_patching``: putting them (and Thread.start/join, time) in place;
- ``_import_time``: primitives made before the patches, swapped for a run;
- ``_workers``: the OS threads kept between runs, made fresh for each callable;
- ``_report``: the interleaving, deadlock and livelock stories;
- ``_novelty``: under pytest, an example that repeats an interleaving does not count;
- ``_state`` and ``_real``: what the others share, and the unpatched originals.
"""

from __future__ import annotations

from .explore import Exploration, explore_all
from .schedule import Schedule
from .strategy import schedules

__all__ = ["Exploration", "Schedule", "explore_all", "schedules"]
