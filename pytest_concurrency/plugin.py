"""The pytest entry point (``pytest11``) of pytest-concurrency.

Nothing happens here: each part of the plugin is its own module, with its own
options and hooks, and this module only names them.  See ``docs`` in the
README for what each part does.
"""

pytest_plugins = [
    "pytest_concurrency.impl",  # --impl DIR and load_impl()
    "pytest_concurrency.grading",  # points, score table, --grade-json
    "pytest_concurrency.schedules_hooks",  # schedules(): patch scope and settings of schedule tests
    "pytest_concurrency.deadlock",  # wait-for cycles and lock-order inversions in real runs
    "pytest_concurrency.hygiene",  # leaked threads, processes, greenlets; lost thread exceptions
    "pytest_concurrency.fixtures.memcached",  # memcached, memcached_cluster
    "pytest_concurrency.fixtures.website",  # website
    "pytest_concurrency.fixtures.processes",  # process_guard
    "pytest_concurrency.isolation",  # @pytest.mark.isolated: a fresh interpreter
]
