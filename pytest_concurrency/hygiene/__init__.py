"""Hygiene: what a test leaves behind (threads, processes, greenlets) and exceptions lost in threads.

- ``plugin.py``: the pytest part;
- ``scope.py``: which tests are strict (``hygiene_scope``);
- ``processes.py``: the one watch over child processes (guard, dumps, kill),
  shared by the ``process_guard`` fixture and :mod:`pytest_concurrency.testing`.
"""
