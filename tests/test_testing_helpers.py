"""The shared helpers of pytest_concurrency.testing, tested directly (the kit tests them only through the exercises)."""

from __future__ import annotations

import doctest
import importlib
import multiprocessing
import multiprocessing.synchronize
import os
import sys
import threading
from pathlib import Path

import pytest

import pytest_concurrency.testing as testing
from pytest_concurrency.testing import (  # noqa: F401  (start_method: a fixture)
    Background,
    GuardedManagers,
    start_method,
    wait_until_blocked,
)


def test_the_docstring_examples_run():
    assert doctest.testmod(testing).failed == 0


def test_a_stuck_background_thread_fails_with_where_it_is_stuck():
    never = threading.Event()
    job = Background(never.wait, name="stuck", patience=0.2)
    try:
        with pytest.raises(AssertionError) as failure:
            job.outcome("waiting for nothing")
        message = str(failure.value)
        assert "waiting for nothing: thread 'stuck' was still blocked 0.2 s later" in message
        assert "in wait" in message  # the frame it is stuck in, not the helper's own
        assert "_run" not in message
    finally:
        never.set()
    assert job.outcome("after set") is True


def test_a_background_exception_is_raised_by_outcome():
    job = Background(int, "not a number", name="parser")
    with pytest.raises(ValueError):
        job.outcome("parsing")


def test_wait_until_blocked_fails_when_the_thread_returns_instead():
    job = Background(lambda: None, name="quick")
    job.outcome("returning")
    with pytest.raises(AssertionError, match="returned instead of waiting"):
        wait_until_blocked(job, "quick()")


def test_wait_until_blocked_fails_when_the_thread_spins():
    stop = False

    def spin() -> None:
        while not stop:
            pass

    job = Background(spin, name="spinner")
    try:
        with pytest.raises(AssertionError, match="never slept in Condition.wait within 0.2 s"):
            wait_until_blocked(job, "spin()", patience=0.2)
    finally:
        stop = True  # noqa: F841 (read by spin through the closure)
        job.outcome("spinning")


def test_timed_on_the_virtual_clock_and_the_hint_for_a_wrong_timeout():
    from hypothesis import given

    from pytest_concurrency import schedules
    from pytest_concurrency.testing import timed, timeout_hint

    @given(schedules(max_preemptions=0))
    def sleeping(schedule):
        import time

        [outcome] = schedule.run(lambda: timed(time.sleep, 3))
        how, value, took = outcome
        assert (how, value) == ("returned", None) and took == pytest.approx(3.0)  # virtual seconds

    sleeping()
    how, error, _ = timed(int, "three")
    assert how == "raised" and isinstance(error, ValueError)
    assert "milliseconds" in timeout_hint(0.003, 3.0)  # gave up too soon
    assert "after each wakeup" in timeout_hint(6.0, 3.0)  # the timeout restarted


# --- GuardedManagers: the lock discipline of processes sharing a Manager's dict ------------
#
# Real managers and real worker processes, under fork and under spawn: what a student's code
# does.  The workers are module-level functions, so that spawn can pickle them by name.

ROOT = Path(__file__).resolve().parent.parent
# Python 3.12+ warns when forking while threads run; the tests' watchdog is a thread.
forking_beside_threads = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


@pytest.fixture
def spawnable(monkeypatch):
    """Spawned workers find this module under the name pytest gave it (tests.test_...)."""
    monkeypatch.syspath_prepend(str(ROOT))


WORDS = ["apple", "banana", "apple", "cherry"]
EXPECTED = {"apple": 6, "banana": 3, "cherry": 3}  # three workers


def count_words(counts, lock, how: str) -> None:
    """One worker, written the way ``how`` says: correctly, or with one mistake."""
    if how == "locked":
        for word in WORDS:
            with lock:
                counts[word] = counts.get(word, 0) + 1
    elif how == "locked twice":  # an RLock taken again inside: still one hold
        for word in WORDS:
            with lock:
                counts.setdefault(word, 0)
                with lock:
                    counts[word] += 1
    elif how == "unlocked":
        for word in WORDS:
            counts[word] = counts.get(word, 0) + 1
    elif how == "split":  # the lock let go between the read and the write
        for word in WORDS:
            with lock:
                n = counts.get(word, 0)
            with lock:
                counts[word] = n + 1
    elif how == "checked outside the lock":  # two workers may both see it missing
        for word in WORDS:
            if word not in counts:
                with lock:
                    counts[word] = 0
            with lock:
                counts[word] += 1
    elif how == "own lock":
        own = multiprocessing.Lock()
        for word in WORDS:
            with own:
                counts[word] = counts.get(word, 0) + 1
    elif how == "own manager's lock":
        with multiprocessing.Manager() as manager, manager.Lock():
            for word in WORDS:
                counts[word] = counts.get(word, 0) + 1
    elif how == "new lock each time":
        for word in WORDS:
            with multiprocessing.Lock():
                counts[word] = counts.get(word, 0) + 1
    else:
        raise ValueError(how)


LOCKS = {
    "manager Lock": lambda manager: manager.Lock(),
    "manager RLock": lambda manager: manager.RLock(),
    "multiprocessing Lock": lambda manager: multiprocessing.Lock(),
    "multiprocessing RLock": lambda manager: multiprocessing.RLock(),
}


def count_in_workers(how: str, lock_kind: str = "manager Lock") -> tuple[dict, GuardedManagers]:
    """Three workers count WORDS into one manager dict, under a lock made here: (counts, guard)."""
    with GuardedManagers() as guard, multiprocessing.Manager() as manager:
        counts = manager.dict()
        lock = LOCKS[lock_kind](manager)
        workers = [multiprocessing.Process(target=count_words, args=(counts, lock, how))
                   for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0, 0, 0]
        return dict(counts), guard


@forking_beside_threads
@pytest.mark.usefixtures("start_method", "spawnable")
@pytest.mark.parametrize("lock_kind", LOCKS)
def test_guarded_managers_pass_one_lock_shared_by_every_process_of_either_kind(lock_kind):
    counts, guard = count_in_workers("locked", lock_kind)
    assert counts == EXPECTED
    assert guard.problems() == ""
    # It did look: every worker's writes, each key under the one lock.
    locked = [f for f in guard.findings() if f["kind"] == "locked"]
    assert len({f["pid"] for f in locked}) == 3 and len({tuple(f["locks"]) for f in locked}) == 1


@forking_beside_threads
@pytest.mark.usefixtures("start_method", "spawnable")
def test_guarded_managers_pass_an_rlock_taken_again_inside():
    counts, guard = count_in_workers("locked twice", "manager RLock")
    assert counts == EXPECTED
    assert guard.problems() == ""


@forking_beside_threads
@pytest.mark.usefixtures("start_method", "spawnable")
def test_guarded_managers_name_a_write_without_a_lock():
    _, guard = count_in_workers("unlocked")
    assert guard.problems().startswith(
        "key 'apple' (and 2 more) of the Manager dict was written by 3 worker processes "
        "without holding a lock that every process shares."
    )


@forking_beside_threads
@pytest.mark.usefixtures("start_method", "spawnable")
@pytest.mark.parametrize("how", ["split", "checked outside the lock"])
def test_guarded_managers_name_a_lock_let_go_between_the_read_and_the_write(how):
    _, guard = count_in_workers(how)
    problems = guard.problems()
    assert "under another hold of the lock than the read its value came from" in problems
    assert "without holding" not in problems and "different locks" not in problems


@forking_beside_threads
@pytest.mark.usefixtures("start_method", "spawnable")
@pytest.mark.parametrize("how", ["own lock", "own manager's lock"])
def test_guarded_managers_name_a_lock_made_in_each_process(how):
    _, guard = count_in_workers(how)
    problems = guard.problems()
    assert "key 'apple' (and 2 more) of the Manager dict was updated under 3 different locks: " \
        "each of the 3 processes made its own lock" in problems, problems
    assert "without holding" not in problems


@forking_beside_threads
@pytest.mark.usefixtures("spawnable")
def test_guarded_managers_name_a_new_lock_for_each_update():
    _, guard = count_in_workers("new lock each time")
    assert "a new lock was made for each update" in guard.problems()


@forking_beside_threads
@pytest.mark.usefixtures("spawnable")
def test_guarded_managers_leave_the_test_process_alone_and_undo_what_they_change():
    # Imported here, not at the top: imported at collection, multiprocessing.managers would
    # keep the threading.Lock of then, not the deadlock watch's, and fail to spawn a Manager.
    import multiprocessing.managers

    real = (multiprocessing.managers.SyncManager, multiprocessing.synchronize.Lock)
    with GuardedManagers() as guard, multiprocessing.Manager() as manager:
        counts = manager.dict()
        counts["before the workers"] = counts.get("before the workers", 0) + 1  # no lock needed
        with pytest.raises(RuntimeError, match="do not nest"), GuardedManagers():
            pass
    assert guard.findings() == [] and guard.problems() == ""
    assert (multiprocessing.managers.SyncManager, multiprocessing.synchronize.Lock) == real
    assert testing._FINDINGS_ENV not in os.environ


SOLUTION = ROOT / "solutions" / "14_manager_dict" / "manager_dict.py"


@forking_beside_threads
@pytest.mark.usefixtures("start_method", "spawnable")
@pytest.mark.parametrize("lock", ["manager.Lock()", "multiprocessing.Lock()"])
def test_the_solution_of_14_passes_with_a_manager_lock_or_a_multiprocessing_lock(
    lock, tmp_path, monkeypatch
):
    # The reference solution, and the same with a multiprocessing.Lock made in the parent and
    # passed to the workers: both right, neither flagged.  Importable by name, for spawn.
    source = SOLUTION.read_text(encoding="utf-8")
    assert "lock = manager.Lock()" in source
    module = f"manager_dict_{'manager' if lock.startswith('manager') else 'mp'}_lock"
    (tmp_path / f"{module}.py").write_text(source.replace("manager.Lock()", lock), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(module, None)  # this test's copy, not the one of its other start method
    word_count = importlib.import_module(module).word_count
    chunks = ["apple banana apple cherry"] * 12
    with GuardedManagers() as guard:
        counts = word_count(chunks, 4)
    assert counts == {"apple": 24, "banana": 12, "cherry": 12}
    assert guard.problems() == ""
    assert len({f["pid"] for f in guard.findings()}) == 4  # every worker's writes were seen
