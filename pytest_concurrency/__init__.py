"""pytest-concurrency: teach Python concurrency, test it deterministically, grade it honestly.

The public API::

    from pytest_concurrency import schedules, DeadlockError, load_impl
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConcurrencyError, DeadlockError, ImplementationError, LivelockError

__all__ = [
    "ConcurrencyError",
    "DeadlockError",
    "ImplementationError",
    "LivelockError",
    "load_impl",
    "schedules",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .impl import load_impl
    from .schedules import schedules


def __getattr__(name: str) -> Any:
    # Imported on first use: the plugin's parts must be imported by pytest
    # itself (so that it can rewrite their asserts), and Hypothesis only by
    # code that asks for schedules().
    if name == "load_impl":
        from .impl import load_impl

        return load_impl
    if name == "schedules":
        from .schedules import schedules

        return schedules
    raise AttributeError(f"module 'pytest_concurrency' has no attribute {name!r}")
