"""Deadlock detection in real runs: each case is a real pytest run of a test that deadlocks.

Every run is a subprocess (its threads deadlock for real and the plugin patches
``threading``), with a small ``--deadlock-timeout`` so that the suite stays fast,
and a ``timeout`` that only a hang would reach.  A test that deadlocks is
followed by one that passes: the run must go on.
"""

from __future__ import annotations

import textwrap
import time

import pytest

# Hangs would be bugs of the plugin: fail the run long before CI's limit.
RUN_LIMIT = 120
FAST = "0.3"


def run(pytester: pytest.Pytester, source: str, *args: str, folder: str | None = None, then: str = ""):
    """Write ``source`` (and ``then``) as a test file, inside ``folder`` if given, and run pytest on it."""
    code = textwrap.dedent(source) + textwrap.dedent(then)
    if folder is None:
        pytester.makepyfile(test_subject=code)
        target = "test_subject.py"
    else:
        pytester.mkdir(folder)
        (pytester.path / folder / "test_subject.py").write_text(code)
        target = f"{folder}/test_subject.py"
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--deadlock-timeout", FAST, target, *args, timeout=RUN_LIMIT
    )


AND_THE_RUN_GOES_ON = """

def test_the_run_goes_on():
    import threading
    assert [t.name for t in threading.enumerate() if t.name.startswith("worker")] == []
"""


ABBA_IN_WORKERS = """
    import threading

    import pytest
    from pytest_concurrency import DeadlockError

    @pytest.mark.xfail(raises=DeadlockError, strict=True)
    def test_abba_expected():
        first, second = threading.Lock(), threading.Lock()
        both_hold_one = threading.Barrier(2)

        def forward():
            with first:
                both_hold_one.wait()
                with second:
                    pass

        def backward():
            with second:
                both_hold_one.wait()
                with first:
                    pass

        workers = [threading.Thread(target=f, name="worker-" + f.__name__) for f in (forward, backward)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()  # returns once the watchdog unwound them: the test itself ends normally
"""
EXPECTED = "    @pytest.mark.xfail(raises=DeadlockError, strict=True)\n"  # without it: an ordinary failing test


def test_abba_deadlock_is_reported_with_the_cycle_and_both_stacks(pytester: pytest.Pytester) -> None:
    started = time.monotonic()
    result = run(pytester, ABBA_IN_WORKERS.replace(EXPECTED, ""), then=AND_THE_RUN_GOES_ON)
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*DeadlockError: deadlock: 2 threads wait for each other in a cycle*",
        "  thread 'worker-forward' holds `first` (Lock#1 made at test_subject.py:*)",
        "      taken at test_subject.py:* in forward: with first:",
        "    waits for `second` (Lock#2 made at test_subject.py:*) in Lock.acquire(), held by thread 'worker-backward'",
        "      at test_subject.py:* in forward: with second:",
        "Stacks:",
        "*thread 'worker-*':",
        "*test_subject.py:* in *",
    ])
    assert "thread 'worker-backward' holds `second`" in result.stdout.str()
    # Unwound threads are not also reported as lost exceptions.
    assert "PytestUnhandledThreadExceptionWarning" not in result.stdout.str()
    assert elapsed < RUN_LIMIT / 2


def test_three_threads_in_a_cycle(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading

        def test_ring():
            locks = [threading.Lock() for _ in range(3)]
            all_hold_one = threading.Barrier(3)

            def take(i):
                with locks[i]:
                    all_hold_one.wait()
                    with locks[(i + 1) % 3]:
                        pass

            workers = [threading.Thread(target=take, args=(i,), name=f"worker-{i}") for i in range(3)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    """, then=AND_THE_RUN_GOES_ON)
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "deadlock: 3 threads wait for each other in a cycle" in out
    for name in ("worker-0", "worker-1", "worker-2"):
        assert f"thread '{name}'" in out


def test_a_lost_wakeup_is_reported_as_nobody_can_wake_anyone(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading

        def test_notify_before_wait():
            cond = threading.Condition()
            ready = []

            def consumer():
                with cond:
                    cond.wait()          # no predicate: the notify already happened
                    ready.append(1)

            with cond:
                cond.notify()
            worker = threading.Thread(target=consumer, name="worker-consumer")
            worker.start()
            worker.join()
    """, then=AND_THE_RUN_GOES_ON)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*deadlock: every thread of the test (2) has been blocked*lost wakeup*",
        "*thread 'worker-consumer' holds nothing",
        "*waits for `cond` (Condition made at test_subject.py:*) in Condition.wait()",
        "*at test_subject.py:* in consumer: cond.wait()*",
        "*thread 'MainThread' holds nothing",
        "*waits for join() of thread 'worker-consumer'",
    ])


def test_a_join_on_a_thread_blocked_forever(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import queue
        import threading

        def test_join_on_a_consumer_nobody_feeds():
            jobs = queue.Queue()
            worker = threading.Thread(target=jobs.get, name="worker-get")
            worker.start()
            worker.join()
    """, then=AND_THE_RUN_GOES_ON)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*deadlock: every thread of the test*",
        "*waits for `jobs` (Queue made at test_subject.py:*) in Queue.get()*",
        "*waits for join() of thread 'worker-get'",
    ])


def test_a_thread_that_takes_its_own_lock_again(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading

        def test_lock_twice():
            lock = threading.Lock()
            with lock:
                with lock:
                    pass
    """, then=AND_THE_RUN_GOES_ON)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*waits for a lock it holds itself*Use an RLock*"])


SEMAPHORE_AND_EVENT_DEADLOCK = """
    import threading

    def test_everyone_waits():
        slots = threading.Semaphore(0)
        go = threading.Event()
        def worker():
            slots.acquire()
            go.set()
        t = threading.Thread(target=worker, name="worker-sem")
        t.start()
        go.wait()
        t.join()
"""


def test_semaphores_and_events_count_as_blocked(pytester: pytest.Pytester) -> None:
    result = run(pytester, SEMAPHORE_AND_EVENT_DEADLOCK, then=AND_THE_RUN_GOES_ON)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*waits for `slots` (Semaphore made at test_subject.py:*) in Semaphore.acquire()",
        "*waits for `go` (Event made at test_subject.py:*) in Event.wait()",
    ])


def test_waits_with_a_timeout_are_never_a_deadlock(pytester: pytest.Pytester) -> None:
    # Both threads poll with timeouts for 4 deadlock timeouts, then finish.
    result = run(pytester, """
        import threading, time

        def test_polling():
            stop = threading.Event()
            lock = threading.Lock()
            def poller():
                while not stop.wait(0.05):
                    if lock.acquire(timeout=0.05):
                        lock.release()
            t = threading.Thread(target=poller, name="worker-poller")
            t.start()
            deadline = time.monotonic() + 1.2
            while time.monotonic() < deadline:
                stop.wait(0.1)
            stop.set()
            t.join()
    """)
    result.assert_outcomes(passed=1)


def test_a_lock_order_inversion_without_deadlock_is_a_warning_in_users_tests(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, INVERSION)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*PotentialDeadlockWarning: potential deadlock: locks taken in opposite orders*",
        "*thread 'worker-backward' took Lock#*",
        "*at *test_subject.py:* in backward: with second:",
        "*then Lock#*",
        "*at *test_subject.py:* in backward: with first:",
        "*while thread 'worker-forward' took Lock#*",
        "*at *test_subject.py:* in forward: with first:",
    ])


INVERSION = """
    import threading

    def test_opposite_orders_one_after_the_other():
        first, second = threading.Lock(), threading.Lock()
        def forward():
            with first:
                with second:
                    pass
        def backward():
            with second:
                with first:
                    pass
        for target, name in ((forward, "worker-forward"), (backward, "worker-backward")):
            t = threading.Thread(target=target, name=name)
            t.start()
            t.join()
"""


def test_a_lock_order_inversion_fails_an_exercise_test(pytester: pytest.Pytester) -> None:
    result = run(pytester, INVERSION, folder="06_locks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*potential deadlock: locks taken in opposite orders*"])


def test_an_inversion_with_locks_that_outlive_a_test_is_found_in_the_next_one(
    pytester: pytest.Pytester,
) -> None:
    # Each test starts a new lock-order graph; locks remember the orders they
    # were taken in, and that memory must not outlive the graph it belongs to.
    result = run(pytester, """
        import threading
        import pytest

        @pytest.fixture(scope="module")
        def locks():
            return threading.Lock(), threading.Lock()  # made watched, inside the first test

        def test_one_order(locks):
            first, second = locks
            for _ in range(3):
                with first:
                    with second:
                        pass

        def test_both_orders(locks):
            first, second = locks
            with first:
                with second:
                    pass
            with second:
                with first:
                    pass
    """, folder="06_locks")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED*test_both_orders*",
    ])
    assert "FAILED 06_locks/test_subject.py::test_one_order" not in result.stdout.str()


def test_a_lock_held_through_a_condition_is_shown_where_the_with_is(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading

        def test_condition_and_lock():
            cond, lock = threading.Condition(), threading.Lock()
            both_hold_one = threading.Barrier(2)

            def forward():
                with cond:
                    both_hold_one.wait()
                    with lock:
                        pass

            def backward():
                with lock:
                    both_hold_one.wait()
                    with cond:
                        pass

            workers = [threading.Thread(target=forward, name="worker-forward"),
                       threading.Thread(target=backward, name="worker-backward")]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    """, then=AND_THE_RUN_GOES_ON)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*deadlock: 2 threads wait for each other in a cycle*",
        "*holds `cond._lock` (RLock#* made at test_subject.py:*)",
        "*taken at test_subject.py:* in forward: with cond:",
    ])


def test_one_fixed_order_is_not_an_inversion(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading

        def test_same_order():
            first, second = threading.RLock(), threading.Lock()
            def both():
                with first:
                    with first:          # re-entering an RLock adds no order
                        with second:
                            pass
            threads = [threading.Thread(target=both) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    """, folder="06_locks")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "ini", "named"),
    [
        (["--deadlock-timeout", "-1"], None, "--deadlock-timeout=-1"),
        (["--deadlock-timeout", "soon"], None, "--deadlock-timeout=soon"),
        ([], "deadlock_timeout = -0.5", "deadlock_timeout = -0.5 (ini, tox.ini)"),
        ([], "deadlock_timeout = never", "deadlock_timeout = never (ini, tox.ini)"),
        (["--exercise-timeout", "x"], None, "--exercise-timeout=x"),
    ],
)
def test_a_bad_deadlock_timeout_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, args: list[str], ini: str | None, named: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_subject="def test_nothing(): pass")
    result = pytester.runpytest_subprocess(*args, timeout=RUN_LIMIT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{named}: expected a number of seconds*"])
    assert "Traceback" not in result.stderr.str()


HANG_ON_A_RAW_LOCK = """
    import _thread
    import threading

    def test_hangs_where_nobody_can_see():
        raw = _thread.allocate_lock()
        raw.acquire()
        def stuck():
            raw.acquire()
        t = threading.Thread(target=stuck, name="worker-raw", daemon=True)
        t.start()
        done = threading.Event()
        done.wait()          # watched, but the worker is not: no verdict, the last guard fires

    def test_the_next_test_runs():
        pass
"""


def test_pytest_timeout_is_the_last_guard_and_its_report_is_merged(pytester: pytest.Pytester) -> None:
    result = run(pytester, HANG_ON_A_RAW_LOCK, "--exercise-timeout", "3", folder="07_demo")
    # The error: the worker stuck on the raw lock is a leaked thread (hygiene).
    result.assert_outcomes(failed=1, passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*Timeout (>3.0s) from pytest-timeout*",
        "*pytest-concurrency: the threads of the test when the timeout fired:*",
    ])
    result.stdout.fnmatch_lines([
        "*thread 'MainThread' holds nothing",
        "*waits for `done` (Event made at 07_demo/test_subject.py:*) in Event.wait()",
        "*at 07_demo/test_subject.py:* in test_hangs_where_nobody_can_see: done.wait()*",
    ])
    result.stdout.fnmatch_lines([
        "*thread 'worker-raw' holds nothing",
        "*is not blocked on a watched primitive*",
        "*in stuck*",
    ])


def test_code_that_replaces_threading_lock_still_gets_a_report(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import _thread
        import threading

        def test_own_lock_factory():
            threading.Lock = _thread.allocate_lock
            lock = threading.Lock()
            lock.acquire()
            t = threading.Thread(target=lock.acquire, name="worker-own", daemon=True)
            t.start()
            threading.Event().wait()

        def test_threading_lock_is_back():
            import threading
            assert threading.Lock is not __import__("_thread").allocate_lock
    """, "--exercise-timeout", "3", folder="07_demo")
    result.assert_outcomes(failed=1, passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*Timeout (>3.0s) from pytest-timeout*",
        "*The code under test replaced threading.Lock*",
    ])


def test_a_watchdog_verdict_is_the_phase_error_that_other_plugins_see(pytester: pytest.Pytester) -> None:
    """The verdict replaces the phase's outcome before the report is made: xfail(raises=...) sees it."""
    result = run(pytester, ABBA_IN_WORKERS, "-rxX", then=AND_THE_RUN_GOES_ON)
    result.assert_outcomes(xfailed=1, passed=1)


def test_the_deadlock_part_can_be_left_out_by_name(pytester: pytest.Pytester) -> None:
    """The parts are registered by plugin.py, not pytest_plugins: ``-p no:`` still leaves one out."""
    source = """
        import threading

        def test_which_lock():
            print("lock type:", type(threading.Lock()).__name__)
    """
    watched = run(pytester, source, "-s")
    left_out = pytester.runpytest_subprocess(  # (without the part, --deadlock-timeout is unknown)
        "-p", "no:cacheprovider", "-s", "-p", "no:pytest_concurrency.deadlock", "test_subject.py",
        timeout=RUN_LIMIT,
    )
    watched.assert_outcomes(passed=1)
    left_out.assert_outcomes(passed=1)
    watched.stdout.fnmatch_lines(["*lock type: InstrumentedLock*"])
    left_out.stdout.fnmatch_lines(["*lock type: lock*"])
