"""The pytest entry point (``pytest11``) of pytest-concurrency.

Nothing happens here: each part of the plugin is a folder with a ``plugin.py``
holding its options and hooks, and this module only names them, in the
order pytest registers them.

The parts are registered under their module names, as ``pytest_plugins`` would
register them, so ``-p no:pytest_concurrency.deadlock.plugin`` leaves one out;
the name a part had before the package was laid out in folders (``-p
no:pytest_concurrency.deadlock``) still works as an alias.  Registering them
here, not through ``pytest_plugins``, skips what pytest does for each name
there: a search of every installed distribution's entry points, and loading
the module through the assertion rewriter.  Together that was most of the
plugin's cost at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

# (module, the names it was known by before): in registration order.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pytest_concurrency.impl", ()),  # --impl DIR and load_impl()
    ("pytest_concurrency.grading.plugin", ("pytest_concurrency.grading",)),  # points, score table
    ("pytest_concurrency.scheduler.plugin", ("pytest_concurrency.schedules_hooks",)),  # schedules()
    ("pytest_concurrency.deadlock.plugin", ("pytest_concurrency.deadlock",)),  # wait-for cycles
    ("pytest_concurrency.hygiene.plugin", ("pytest_concurrency.hygiene",)),  # leaks, thread errors
    ("pytest_concurrency.fixtures.memcached", ()),  # memcached, memcached_cluster
    ("pytest_concurrency.fixtures.website", ()),  # website
    ("pytest_concurrency.fixtures.processes", ()),  # process_guard
    ("pytest_concurrency.isolation.plugin", ("pytest_concurrency.isolation",)),  # @isolated
)


def pytest_addhooks(pluginmanager: Any) -> None:
    """Register the parts as this module is registered, where ``pytest_plugins`` would."""
    for name, aliases in PARTS:
        if any(pluginmanager.is_blocked(n) for n in (name, *aliases)):
            pluginmanager.set_blocked(name)  # nothing else may register it either
            continue
        if not pluginmanager.has_plugin(name):
            pluginmanager.register(importlib.import_module(name), name)
