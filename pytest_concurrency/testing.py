"""Helpers for tests of code that starts processes, shared by the process exercises.

Import the fixtures into a test module to use them::

    from pytest_concurrency.testing import children, start_method, within  # noqa: F401

- ``start_method``: runs the test once with ``fork`` and once with ``spawn``
  (the default on macOS and Windows) as ``multiprocessing``'s start method.
- ``children`` (autouse where imported): a :class:`Children` watch over the
  child processes the test starts; whatever is left is killed afterwards.
- :func:`within`: call a function, but fail instead of hanging.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.pool
import sys
import threading
import time
from multiprocessing import resource_tracker

import psutil
import pytest

# How long cleaning up may wait for a leftover pool or process.
PATIENCE = 30.0


@pytest.fixture(params=["fork", "spawn"])
def start_method(request, monkeypatch):
    """Run the test with ``multiprocessing``'s default start method set to fork, then spawn."""
    if request.param not in multiprocessing.get_all_start_methods():
        pytest.skip(f"the {request.param} start method does not exist on this platform")
    main = sys.modules["__main__"]
    if request.param == "spawn" and getattr(main.__spec__, "name", None) is None:
        # Launched as the `pytest` script: every spawned child would run that script
        # (importing pytest) before its work.  The code under test never needs it.
        monkeypatch.delattr(main, "__file__", raising=False)
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    try:
        yield request.param
    finally:
        multiprocessing.set_start_method(previous, force=True)


class Children:
    """The child processes started since the test began (also unreaped, zombie ones)."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._before = {p.pid for p in self._me.children(recursive=True)}

    def new(self) -> list[psutil.Process]:
        # multiprocessing's resource tracker (spawn) lives as long as pytest: not the test's.
        tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
        return [
            p for p in self._me.children(recursive=True)
            if p.pid not in self._before and p.pid != tracker
        ]

    def assert_none_left(self, after: str) -> None:
        left = self.new()
        if left:
            described = ", ".join(f"pid {p.pid} ({process_status(p)})" for p in left)
            self.kill()
            raise AssertionError(
                f"{len(left)} child process(es) still there {after}: {described}. "
                "Join every process you start (a finished process that nobody joined "
                "stays behind as a zombie)."
            )

    def kill(self) -> None:
        if not self.new():
            return
        # A pool left running must be terminated by its own pool object first: a
        # worker killed while it holds the pool's queue lock makes terminate() hang.
        for pool in [o for o in gc.get_objects() if isinstance(o, multiprocessing.pool.Pool)]:
            stopper = threading.Thread(target=pool.terminate, name="terminating a leftover pool", daemon=True)
            stopper.start()
            stopper.join(PATIENCE)
        for child in self.new():
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        deadline = time.monotonic() + PATIENCE
        for process in multiprocessing.active_children():  # joins (reaps) the ones it knows
            process.join(max(0.0, deadline - time.monotonic()))


def process_status(process: psutil.Process) -> str:
    """The status psutil reports (e.g. "zombie"), or "gone"."""
    try:
        return process.status()
    except psutil.NoSuchProcess:
        return "gone"


@pytest.fixture(autouse=True)
def children():
    watch = Children()
    yield watch
    watch.kill()  # whatever a failing implementation left behind does not leak into the next test


def within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, but fail instead of hanging if it has not returned after ``seconds``."""
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as error:  # handed to the test's thread below
            outcome["error"] = error

    caller = threading.Thread(target=call, name=f"calling {fn.__name__}", daemon=True)
    caller.start()
    caller.join(seconds)
    if caller.is_alive():
        raise AssertionError(f"{fn.__name__} did not return within {seconds:g} s: it hangs")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
