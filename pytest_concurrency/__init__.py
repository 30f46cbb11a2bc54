"""pytest-concurrency: teach Python concurrency, test it deterministically, grade it honestly.

The public API::

    from pytest_concurrency import schedules, DeadlockError, load_impl

Every name is imported on first use: ``import pytest_concurrency`` loads
neither Hypothesis nor the scheduler, so the plugin's helper processes (an
isolated test's interpreter, a graded exercise, a server) start light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ConcurrencyError, DeadlockError, ImplementationError, LivelockError

if TYPE_CHECKING:
    from .impl import load_impl
    from .linearizability import BLOCKS, NotLinearizable, Operation, Raises, scenarios
    from .scheduler import Exploration, Schedule, explore_all, schedules

__all__ = [
    "BLOCKS",
    "ConcurrencyError",
    "DeadlockError",
    "Exploration",
    "ImplementationError",
    "LivelockError",
    "NotLinearizable",
    "Operation",
    "Raises",
    "Schedule",
    "explore_all",
    "load_impl",
    "scenarios",
    "schedules",
]
__version__ = "0.1.0"

# name -> the module that defines it (imported by pytest first, for the plugin's
# parts: pytest rewrites their asserts only if it is the one to import them).
_LAZY = {
    "schedules": ".scheduler.strategy",
    "Schedule": ".scheduler.schedule",
    "explore_all": ".scheduler.explore",
    "Exploration": ".scheduler.explore",
    "load_impl": ".impl",
    "BLOCKS": ".linearizability",
    "NotLinearizable": ".linearizability",
    "Operation": ".linearizability",
    "Raises": ".linearizability",
    "scenarios": ".linearizability",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_concurrency' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
