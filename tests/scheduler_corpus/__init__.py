"""A corpus of classic thread bugs, each with its fixed twin.

Every module defines ``buggy(schedule)`` and ``fixed(schedule)``: the same
scenario, run through ``schedule.run`` (a controlled :class:`Schedule`, or any
object with a ``run(*callables)`` method, such as the plain-thread runner of
``benchmarks/bench_scheduler.py``).  ``buggy`` fails under some interleaving
(an AssertionError, a DeadlockError, an exception in a thread); ``fixed`` never
does.  The docstring's first line names the bug.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

NAMES = sorted(
    info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
)


def load(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")
