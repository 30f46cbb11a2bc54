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

# Bound now, not on first use: importing the submodule ``pytest_concurrency.schedules``
# (``from pytest_concurrency.schedules import Schedule``) sets the package
# attribute of that name to the module only when it is first loaded, which
# this line does, and then rebinds the name to the function for good.  The
# module imports neither pytest nor Hypothesis (Hypothesis only when a
# strategy is made).
from .schedules import schedules

if TYPE_CHECKING:
    from .impl import load_impl


def __getattr__(name: str) -> Any:
    # Imported on first use: the plugin's parts must be imported by pytest
    # itself (so that it can rewrite their asserts).
    if name == "load_impl":
        from .impl import load_impl

        return load_impl
    raise AttributeError(f"module 'pytest_concurrency' has no attribute {name!r}")
