"""The pytest entry point (``pytest11``) of pytest-concurrency.

Nothing happens here: each part of the plugin is its own module, with its own
options and hooks, and this module only names them.  See ``docs`` in the
README for what each part does.

The parts are registered under their module names, as ``pytest_plugins`` would
register them (so ``-p no:pytest_concurrency.deadlock`` still leaves one out),
but without what pytest does for each name in ``pytest_plugins``: a search of
every installed distribution's entry points, and loading the module through
the assertion rewriter (``marshal.load`` from a file, object by object).
Together that was most of the plugin's cost at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

PARTS = (
    "pytest_concurrency.impl",  # --impl DIR and load_impl()
    "pytest_concurrency.grading",  # points, score table, --grade-json
    "pytest_concurrency.schedules_hooks",  # schedules(): patch scope and settings of schedule tests
    "pytest_concurrency.deadlock",  # wait-for cycles and lock-order inversions in real runs
    "pytest_concurrency.hygiene",  # leaked threads, processes, greenlets; lost thread exceptions
    "pytest_concurrency.fixtures.memcached",  # memcached, memcached_cluster
    "pytest_concurrency.fixtures.website",  # website
    "pytest_concurrency.fixtures.processes",  # process_guard
    "pytest_concurrency.isolation",  # @pytest.mark.isolated: a fresh interpreter
)


def pytest_addhooks(pluginmanager: Any) -> None:
    # Called as this module is registered: the parts are registered at the
    # same moment pytest_plugins would have registered them.
    for name in PARTS:
        if not pluginmanager.is_blocked(name) and not pluginmanager.has_plugin(name):
            pluginmanager.register(importlib.import_module(name), name)
