"""Which tests are strict: leaks, thread exceptions and lock-order inversions fail them.

Strict: exercise tests (inside an ``NN_name`` folder), tests marked
``@pytest.mark.hygiene``, and every test when the ini says ``hygiene_scope = all``.
"""

from __future__ import annotations

import threading

import pytest

from .._config import Setting, choice, read
from ..layout import in_exercise_folder

HYGIENE_SCOPE = Setting(
    "hygiene_scope", parse=choice("exercises", "all"), default="exercises",
    shown_default="exercises",
    help="which tests fail on leaked threads, processes, greenlets and thread exceptions, and "
         "on lock-order inversions: 'exercises' (tests in NN_name folders, and tests marked "
         "hygiene) or 'all'",
)


_strict_key = pytest.StashKey[bool]()
def is_strict(item: pytest.Item) -> bool:
    """Whether leaks and lock-order inversions fail ``item`` (see the module docstring)."""
    known = item.stash.get(_strict_key, None)
    if known is None:
        known = item.stash[_strict_key] = (
            read(item.config, HYGIENE_SCOPE) == "all"
            or in_exercise_folder(item.path)
            or has_marker(item, "hygiene")
        )
    return known


def has_marker(item: pytest.Item, name: str) -> bool:
    """``item.get_closest_marker(name) is not None``, without its generators (asked for every test)."""
    node: pytest.Item | pytest.Collector | None = item
    while node is not None:
        for mark in node.own_markers:
            if mark.name == name:
                return True
        node = node.parent
    return False


_threads_key = pytest.StashKey[set[threading.Thread]]()


def threads_at_start(item: pytest.Item) -> set[threading.Thread]:
    """The threads alive as ``item``'s protocol began (one snapshot for the parts that ask)."""
    threads = item.stash.get(_threads_key, None)
    if threads is None:
        threads = item.stash[_threads_key] = set(threading.enumerate())
    return threads


def forget_threads_at_start(item: pytest.Item) -> None:
    """At the end of the protocol: a test run again (reruns) takes a new snapshot."""
    if _threads_key in item.stash:
        del item.stash[_threads_key]
