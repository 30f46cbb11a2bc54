"""Which tests are strict: leaks, thread exceptions and lock-order inversions fail them.

Strict: exercise tests (inside an ``NN_name`` folder), tests marked
``@pytest.mark.hygiene``, and every test when the ini says ``hygiene_scope = all``::

    >>> is_strict(item_in("exercises/07_thread_pool/test_thread_pool.py"))  # doctest: +SKIP
    True
"""

from __future__ import annotations

import pytest

from .layout import exercise_folder

HYGIENE_SCOPE_HELP = (
    "which tests fail on leaked threads, processes, greenlets and thread exceptions, and on "
    "lock-order inversions: 'exercises' (default: tests in NN_name folders, and tests marked "
    "hygiene) or 'all'"
)


def is_strict(item: pytest.Item) -> bool:
    """Whether leaks and lock-order inversions fail ``item`` (see the module docstring)."""
    if item.get_closest_marker("hygiene") is not None:
        return True
    if exercise_folder(item.path) is not None:
        return True
    return item.config.getini("hygiene_scope") == "all"
