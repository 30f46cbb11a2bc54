"""Reports worth reading: short, about the student's code, one failure at a time, misuse explained."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_schedule_tests_have_no_explain_phase_and_one_failure_at_a_time(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_settings="""
        from hypothesis import Phase, given
        from pytest_concurrency import schedules

        @given(schedules())
        def test_settings(schedule):
            chosen = test_settings._hypothesis_internal_use_settings
            assert Phase.explain not in chosen.phases, chosen.phases
            assert chosen.report_multiple_bugs is False
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_failing_race_names_no_file_of_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_counter="""
        from hypothesis import given, settings
        from pytest_concurrency import schedules

        class Counter:
            def __init__(self):
                self._n = 0

            def incr(self):
                self._n += 1

        @settings(derandomize=True, database=None)
        @given(schedules())
        def test_counter(schedule):
            counter = Counter()
            schedule.run(counter.incr, counter.incr, counter.incr)
            assert counter._n == 3
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "pytest_concurrency/" not in output and "Explanation:" not in output, output
    assert "ExceptionGroup" not in output and "distinct failures" not in output, output
    assert "self._n" in output  # the student's own attribute name
    # The message fits on one screen before the interleaving starts.
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "test_counter ___" in line or "_ test_counter _" in line)
    story = next(i for i, line in enumerate(lines) if "Interleaving (" in line)
    assert story - start <= 40, output


@pytest.mark.filterwarnings("ignore:potential deadlock")
def test_lock_order_inversions_come_one_block_per_pair_of_lines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank="""
        import threading

        class Account:
            def __init__(self):
                self.lock = threading.Lock()

        def transfer(src, dst):
            with src.lock:
                with dst.lock:
                    pass

        def test_transfers():
            accounts = [Account() for _ in range(4)]
            def teller():
                for src in accounts:
                    for dst in accounts:
                        if src is not dst:
                            transfer(src, dst)
            worker = threading.Thread(target=teller, name="teller")
            worker.start()
            worker.join()
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "default:potential deadlock")
    output = result.stdout.str()
    assert "lock-order inversion" in output, output
    # Every inversion is the same two lines taken in opposite orders: one block.
    assert output.count("then `") == 2, output
    assert "more pairs of locks taken at the same lines" in output, output
    assert "pytest_concurrency/" not in output, output  # the warning is shown at the test


def test_a_closed_pool_is_explained(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pool="""
        from multiprocessing.pool import ThreadPool

        def test_map_after_close():
            pool = ThreadPool(2)
            pool.close()
            try:
                pool.map(abs, [1, -2])
            finally:
                pool.join()
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "Pool not running" in result.stdout.str()
    assert "The pool no longer takes tasks" in result.stdout.str()


def test_a_zero_slot_semaphore_is_a_zero_limit_not_a_lost_wakeup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_zero="""
        import threading
        from hypothesis import given, settings
        from pytest_concurrency import DeadlockError, schedules

        @settings(derandomize=True, database=None, max_examples=1)
        @given(schedules())
        def test_zero(schedule):
            slots = threading.BoundedSemaphore(0)
            schedule.run(slots.acquire)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "made with 0 slots" in output, output
    assert "lost wakeup" not in output, output


def test_a_real_deadlock_ends_on_the_students_line_not_in_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_real="""
        import threading
        from pytest_concurrency.testing import Background

        def test_abba():
            a, b = threading.Lock(), threading.Lock()
            both = threading.Barrier(2)

            def take(first, second):
                with first:
                    both.wait()
                    with second:
                        pass

            jobs = [Background(take, *pair, name=f"teller-{i}") for i, pair in enumerate(((a, b), (b, a)))]
            for job in jobs:
                job.outcome("two opposite transfers")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--deadlock-timeout", "0.3")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "deadlock" in output, output
    assert "pytest_concurrency/" not in output, output


def test_a_deadlock_shown_once_is_named_not_repeated_by_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank="""
        import threading
        from hypothesis import given, settings
        from pytest_concurrency import DeadlockError, schedules

        def transfer(first, second):
            with first:
                with second:
                    pass

        def both_ways(schedule):
            x, y = threading.Lock(), threading.Lock()
            schedule.run(lambda: transfer(x, y), lambda: transfer(y, x))

        @settings(derandomize=True, database=None)
        @given(schedules())
        def test_first(schedule):
            both_ways(schedule)

        @settings(derandomize=True, database=None)
        @given(schedules())
        def test_second(schedule):
            both_ways(schedule)

        @settings(derandomize=True, database=None)
        @given(schedules())
        def test_another_deadlock(schedule):
            never = threading.Event()
            schedule.run(never.wait)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    assert output.count("nobody can go on") == 2, output  # test_first's and test_another_deadlock's
    assert "the same deadlock as in test_first above" in output, output
    assert "a thread waits at test_bank.py:7 in transfer: with second:" in output, output
