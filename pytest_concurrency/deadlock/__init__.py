"""Deadlocks in real (uncontrolled) runs: wait-for cycles, lock-order inversions, a blocked gevent loop.

- ``plugin.py``: the pytest part (``--deadlock-timeout``, the per-test verdict);
- ``watchdog.py``: the thread that looks at the wait-for graph while a test runs;
- ``report.py``: the reports (a cycle, stuck threads, a timeout's snapshot, lock-order
  inversions), in the vocabulary of :mod:`pytest_concurrency._frames`;
- ``_waitgraph.py``: who holds and who waits for what, recorded by patched
  ``threading`` primitives; also read by :mod:`..hygiene` to describe a leaked
  thread and unwind it;
- ``_gevent.py``: the same for greenlets, imported only where gevent is.
"""
