"""The watched primitives behave as threading's own (in-process: these tests run watched)."""

from __future__ import annotations

import multiprocessing.managers
import queue
import threading
from pathlib import Path

import pytest

from pytest_concurrency.deadlock import _waitgraph as wg

PATIENCE = 10.0


@pytest.fixture
def watched():
    wg.install()
    try:
        yield
    finally:
        wg.uninstall()


def test_install_and_uninstall_put_back_exactly_what_they_found() -> None:
    found = (threading.Lock, threading.RLock, threading.Condition, threading.Thread.join)

    def stand_in() -> None:
        """Another part (the controlled scheduler) patched first."""

    threading.Lock = stand_in  # type: ignore[misc, assignment]
    try:
        wg.install()
        assert threading.Lock is wg.InstrumentedLock
        wg.uninstall()
        assert threading.Lock is stand_in
    finally:
        threading.Lock = found[0]  # type: ignore[misc]
    assert (threading.Lock, threading.RLock, threading.Condition, threading.Thread.join) == found


def test_lock_errors_are_threadings_errors(watched) -> None:
    lock = threading.Lock()
    with pytest.raises(RuntimeError):
        lock.release()
    with pytest.raises(ValueError):
        lock.acquire(False, 1)
    assert lock.acquire()
    assert not lock.acquire(timeout=0.01)
    assert lock.locked()
    lock.release()
    assert not lock.locked()


def test_rlock_is_reentrant_and_owned(watched) -> None:
    rlock = threading.RLock()
    with rlock, rlock:
        other = threading.Thread(target=lambda: results.append(rlock.acquire(timeout=0.01)))
        results: list[bool] = []
        other.start()
        other.join()
        assert results == [False]
    with pytest.raises(RuntimeError):
        rlock.release()


def test_condition_event_semaphore_barrier_queue_work(watched) -> None:
    cond = threading.Condition()
    with cond:
        assert cond.wait(0.01) is False
    box: queue.Queue = queue.Queue(maxsize=1)
    barrier = threading.Barrier(2, timeout=PATIENCE)
    seats = threading.BoundedSemaphore(1)
    ready = threading.Event()

    def worker() -> None:
        barrier.wait()
        with seats:
            box.put("hello", timeout=PATIENCE)
        ready.set()

    thread = threading.Thread(target=worker)
    thread.start()
    barrier.wait()
    assert box.get(timeout=PATIENCE) == "hello"
    assert ready.wait(PATIENCE)
    thread.join()
    with pytest.raises(ValueError):
        seats.release()


def test_many_threads_on_one_lock_leave_no_stale_ownership(watched) -> None:
    # Regression: the owner was cleared after the real release, clobbering the next owner's.
    lock = threading.Lock()
    counter = [0]

    def hammer() -> None:
        for _ in range(2000):
            with lock:
                counter[0] += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter[0] == 8000
    assert lock._owner is None
    stale = [i for i, held in wg.held_by_thread().items() if any(h.lock is lock for h in held)]
    assert stale == []


@pytest.mark.no_deadlock_detection  # installs the watch itself, once
def test_the_watched_primitives_pickle_by_reference_so_a_manager_can_be_spawned():
    # A Manager started with spawn pickles its registry, which holds whatever
    # threading.Lock/RLock/Condition were when multiprocessing.managers was imported.
    import pickle

    wg.install()
    try:
        for factory in (threading.Lock, threading.RLock, threading.Condition):
            assert pickle.loads(pickle.dumps(factory)) is factory
    finally:
        wg.uninstall()


@pytest.mark.no_deadlock_detection  # installs the watch itself, once
def test_a_manager_starts_with_spawn_under_the_watch():
    import multiprocessing

    wg.install()
    try:
        with multiprocessing.get_context("spawn").Manager() as manager:
            shared = manager.dict()
            shared["x"] = 1
            assert dict(shared) == {"x": 1}
    finally:
        wg.uninstall()


class _LockManager(multiprocessing.managers.BaseManager):
    """A student's own manager, made before any watch: its registry holds the real RLock."""


_LockManager.register("RLock", threading.RLock, multiprocessing.managers.AcquirerProxy)


@pytest.mark.no_deadlock_detection  # installs the watch itself
def test_managers_imported_before_the_watch_start_with_spawn_under_it_and_after_it(monkeypatch):
    """A student's module imports multiprocessing.managers at its top, so before the watch;
    pickle must still find every factory of the registries a spawned manager carries."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))  # for _LockManager
    spawn = multiprocessing.get_context("spawn")
    for watched in (True, False, True):
        if watched:
            wg.install()
        try:
            with spawn.Manager() as manager, manager.RLock(), manager.Condition():
                pass
            with _LockManager(ctx=spawn) as own, own.RLock():
                pass
        finally:
            if watched:
                wg.uninstall()


def test_a_woken_thread_that_has_not_run_yet_is_not_counted_as_blocked() -> None:
    """A notify (or an ending thread) wakes a waiter some time before it runs again; on
    a loaded machine the watchdog can look in between.  Seen: a pool's callback set the
    event the test waited on, emptied the pool's cache, and the watchdog called it a
    deadlock.  Here the in-between state is made by hand, so it is looked at every run."""
    import _thread
    import time

    from pytest_concurrency.deadlock.watchdog import TestState, Watchdog

    parked = threading.Event()  # the real one: the test thread is not watched meanwhile
    member = threading.Thread(target=parked.wait, args=(PATIENCE,))
    member.start()
    try:
        waiter = _thread.allocate_lock()
        waiter.acquire()
        others = set(threading.enumerate()) - {member}
        test = TestState(None, member, baseline=others)  # type: ignore[arg-type]
        dog = Watchdog(0.01)
        wg._waits[member.ident] = wg.Wait("wait", threading.Condition(), False,
                                          time.monotonic() - 1, raw=waiter)
        dog.look(test)
        assert len(test.reports) == 1, "the waiter sleeps on a locked lock: a deadlock"
        wg.forget_unwound([member.ident])
        test.reports.clear()
        waiter.release()  # notified, not yet run
        dog.look(test)
        assert test.reports == []
    finally:
        wg._waits.pop(member.ident, None)
        wg.forget_unwound([member.ident])
        parked.set()
        member.join()
