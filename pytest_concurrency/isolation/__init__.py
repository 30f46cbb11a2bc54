"""``@pytest.mark.isolated``: tests that monkey-patch (gevent) run in a fresh interpreter.

- ``plugin.py``: the pytest part (batches, the parent's view of each child);
- ``child.py``: the fresh interpreter (``python -m pytest_concurrency.isolation.child``).
"""
