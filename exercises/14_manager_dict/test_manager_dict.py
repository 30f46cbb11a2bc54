"""Graded tests of exercise 14: a word count in a ``Manager().dict()`` shared by processes.

Lost updates are made likely, not left to luck: four processes count the
same three words over and over, so that without a lock their
``counts[w] = counts.get(w, 0) + 1`` (two requests to the manager) overlap on
every run.  The tests run under both start methods (``fork``, and ``spawn``
as on macOS and Windows).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.pool
import sys
import threading
import time
from collections import Counter
from multiprocessing import resource_tracker
from multiprocessing.process import BaseProcess

import psutil
import pytest

from pytest_concurrency import load_impl

manager_dict = load_impl("manager_dict")

# Generous: a correct implementation needs a second or two, but the machine
# may be busy.  Only a broken implementation ever waits this long.
PATIENCE = 60.0

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns when forking while threads run; the tests' watchdog is a thread.
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


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
            described = ", ".join(f"pid {p.pid} ({_status(p)})" for p in left)
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


def _status(process: psutil.Process) -> str:
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


@pytest.fixture
def started_processes(monkeypatch) -> list[BaseProcess]:
    """Every process started during the test (a spy: the processes really start)."""
    started: list[BaseProcess] = []
    real_start = BaseProcess.start

    def start(process: BaseProcess) -> None:
        started.append(process)
        real_start(process)

    monkeypatch.setattr(BaseProcess, "start", start)
    return started


def is_manager(process: BaseProcess) -> bool:
    return "Manager" in process.name  # a manager names its server process SyncManager-N


# Three words, 480 chunks of 10 words: heavy duplication.
CHUNKS = ["apple banana apple\tcherry apple  banana\napple cherry banana apple"] * 480


@pytest.mark.points(5)
# Only fork for now: while the plugin's deadlock watch replaces threading.Lock/RLock,
# a Manager cannot be spawned (its registry of those classes no longer pickles).
@pytest.mark.parametrize("start_method", ["fork"], indirect=True)
def test_word_count_is_exact_under_heavy_duplication(start_method, children):
    """Measured: without a lock around get-then-set, this test failed 30 runs out of 30
    (see tests/broken/14_manager_dict)."""
    counts = within(PATIENCE, manager_dict.word_count, CHUNKS, 4)
    expected = dict(Counter(word for chunk in CHUNKS for word in chunk.split()))
    assert dict(counts) == expected, (
        f"counted {dict(counts)}, expected {expected}: "
        f"{sum(expected.values()) - sum(dict(counts).values())} words were lost. "
        "`d[w] = d.get(w, 0) + 1` on a manager dict is two requests: hold a manager lock around both"
    )
    children.assert_none_left("after word_count returned (join the workers, shut the manager down)")


@pytest.mark.points(2)
def test_word_count_returns_a_plain_dict_and_shuts_the_manager_down(children):
    counts = within(PATIENCE, manager_dict.word_count, ["to be or not to be"], 2)
    assert type(counts) is dict, (
        f"word_count returned a {type(counts).__name__}: return a plain dict (dict(proxy)), "
        "the manager's proxy stops working once the manager is shut down"
    )
    assert counts == {"to": 2, "be": 2, "or": 1, "not": 1}
    children.assert_none_left("after word_count returned (shut the manager down: `with Manager() as m:`)")


@pytest.mark.points(2)
def test_word_count_uses_n_processes_and_one_manager(started_processes, children):
    counts = within(PATIENCE, manager_dict.word_count, ["a b c"] * 30, 3)
    assert counts == {"a": 30, "b": 30, "c": 30}
    managers = [p for p in started_processes if is_manager(p)]
    workers = [p for p in started_processes if not is_manager(p)]
    assert len(managers) == 1, f"expected one Manager, {len(managers)} were started"
    assert len(workers) == 3, f"word_count(chunks, 3) started {len(workers)} counting processes, not 3"
    children.assert_none_left("after word_count returned (join the workers, shut the manager down)")


@pytest.mark.points(1)
def test_word_count_of_nothing_is_empty(children):
    assert within(PATIENCE, manager_dict.word_count, [], 2) == {}
    assert within(PATIENCE, manager_dict.word_count, ["", "  \n"], 2) == {}
    children.assert_none_left("after word_count returned")
