"""Runs that end fast: a student's loop costs seconds, and a test whose threads are all blocked
fails after ``deadlock_timeout`` even when its main thread waits with a timeout.

(a) The kit's own exercises, run as a student runs them (``pytest exercises/... --impl DIR``),
    with an infinite loop in a method of two exercises' modules.
(b) Tests that use the kit's helpers (``Background``, ``within``, ``wait_until_blocked``),
    whose patience can only fail the test: every thread blocked is a deadlock now, and a
    program that makes progress meanwhile is never one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_LIMIT = 120
FAST = "0.3"


def _solution_with(exercise: str, module: str, old: str, new: str, into: Path) -> None:
    source = (ROOT / "solutions" / exercise / f"{module}.py").read_text(encoding="utf-8")
    assert old in source, f"{exercise}/{module}.py changed: the test's edit no longer applies"
    (into / exercise).mkdir(parents=True)
    (into / exercise / f"{module}.py").write_text(source.replace(old, new, 1), encoding="utf-8")


LOOP_07 = (
    "        future: Future = Future()\n",
    "        future: Future = Future()\n        while self._tasks is not None:  # the student's loop\n            pass\n",
)
LOOP_08 = (
    "            self._queue.put((priority, next(self._sequence), item))\n",
    "            while self._queue is not None:  # the student's loop\n                pass\n"
    "            self._queue.put((priority, next(self._sequence), item))\n",
)


def test_a_loop_in_a_method_costs_seconds_and_names_the_students_line(pytester: pytest.Pytester) -> None:
    impl = pytester.path / "impl"
    _solution_with("07_thread_pool", "thread_pool", *LOOP_07, into=impl)
    _solution_with("08_queues", "queues", *LOOP_08, into=impl)
    shutil.copytree(ROOT / "solutions" / "06_locks", impl / "06_locks")
    grade = pytester.path / "grade.json"
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(ROOT), "-c", str(ROOT / "pytest.ini"),
        str(ROOT / "exercises" / "07_thread_pool"), str(ROOT / "exercises" / "08_queues"),
        str(ROOT / "exercises" / "06_locks"), "--impl", str(impl), "--grade-json", str(grade),
        "--exercise-timeout", "4", timeout=RUN_LIMIT,
    )
    took = time.monotonic() - started
    out = result.stdout.str()
    # The first hang of each exercise: its full limit, and the student's line.
    result.stdout.fnmatch_lines([
        "*test_submit_returns_a_future_with_the_result did not finish in 4 s; your code was running "
        "*thread_pool.py:* in submit: `while self._tasks is not None:  # the student's loop`",
    ])
    result.stdout.fnmatch_lines([
        "*test_scheduler_hands_out_the_lowest_priority_first did not finish in 4 s; your code was "
        "running *queues.py:* in submit: `while self._queue is not None:  # the student's loop`",
    ])
    # Every later test of those exercises: the short limit, and why.
    short_07 = out.count("did not finish in 2 s (given 2 s instead of 4 s because "
                         "test_submit_returns_a_future_with_the_result hung before)")
    short_08 = out.count("did not finish in 2 s (given 2 s instead of 4 s because "
                         "test_scheduler_hands_out_the_lowest_priority_first hung before)")
    assert short_07 >= 5 and short_08 >= 3, out[-6000:]
    assert "did not finish in 4 s" not in out.replace(
        "test_submit_returns_a_future_with_the_result did not finish in 4 s", "").replace(
        "test_scheduler_hands_out_the_lowest_priority_first did not finish in 4 s", ""), out[-6000:]
    assert "pytest_concurrency/" not in "\n".join(
        line for line in result.stdout.lines if "did not finish in" in line)
    # The run ends, with the score table, and the other exercise keeps its marks.
    assert "06_locks" in out and "total:" in out, out[-3000:]
    tests = json.loads(grade.read_text(encoding="utf-8"))["tests"]
    locks = [t for t in tests if t["name"].startswith("06_locks/")]
    assert locks and all(t["score"] == t["max_score"] for t in locks), locks
    assert took < 60, f"the run took {took:.0f} s"


def test_a_hung_exercise_reports_within_its_budget_the_rest_not_run(pytester: pytest.Pytester) -> None:
    """Without the budget: 3 s, then 2 s for each of 8 tests (19 s); with a 6 s budget, 6 s."""
    impl = pytester.path / "impl"
    _solution_with("07_thread_pool", "thread_pool", *LOOP_07, into=impl)
    grade = pytester.path / "grade.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(ROOT), "-c", str(ROOT / "pytest.ini"),
        str(ROOT / "exercises" / "07_thread_pool"), "--impl", str(impl), "--grade-json", str(grade),
        "--exercise-timeout", "3", "--exercise-budget", "6", "--durations=0", timeout=RUN_LIMIT,
    )
    hung = "test_submit_returns_a_future_with_the_result"
    loop = r"running (\S*/)?thread_pool\.py:[0-9]+ in submit: `while self\._tasks is not None:  # the student's loop`"
    tests = json.loads(grade.read_text(encoding="utf-8"))["tests"]
    outputs = {t["name"].split("::")[-1]: t["output"] for t in tests if t["score"] < t["max_score"]}
    assert re.match(f"{hung} did not finish in 3 s; your code was {loop}", outputs.pop(hung))
    not_run = [name for name, output in outputs.items() if output.startswith("not run:")]
    assert len(not_run) >= 3, outputs
    for name in not_run:
        assert re.fullmatch(f"not run: 07_thread_pool used its 6 s budget \\(--exercise-budget\\) "
                            f"after {hung} hung; your code was {loop}", outputs[name]), outputs[name]
    for name, output in outputs.items():  # those that ran in the budget: 2 s, or what was left
        if name not in not_run:
            assert re.match(
                f"{name} did not finish in [0-9.]+ s \\(given (2 s instead of 3 s|[01](\\.[0-9])? s, "
                f"what was left of the exercise's 6 s budget,) because {hung} hung before\\); "
                f"your code was {loop}", output), output
    took = sum(float(line.split("s", 1)[0]) for line in result.stdout.lines
               if re.match(r"[0-9.]+s (setup|call|teardown) +.*07_thread_pool", line))
    assert took < 6 + 3, f"07's tests took {took:.1f} s"
    result.stdout.fnmatch_lines(["07_thread_pool  *failing"])


# --- (b) every thread blocked while the main thread waits with a helper's patience ---------

ALL_BLOCKED = """
    import queue
    import threading

    from pytest_concurrency.testing import Background, wait_until_blocked, within

    def test_background_whose_thread_waits_for_ever():
        jobs = queue.Queue()
        taker = Background(jobs.get, name="taker", patience=60)
        taker.outcome("get from a queue nobody fills")

    def test_within_on_a_call_that_waits_for_ever():
        never = threading.Event()
        within(60, never.wait)

    def test_wait_until_blocked_on_a_thread_stuck_on_a_lock():
        lock = threading.Lock()
        lock.acquire()
        def blocked_on_the_lock():
            with lock:
                pass
        job = Background(blocked_on_the_lock, name="locker", patience=60)
        wait_until_blocked(job, "a thread that waits on a lock nobody releases", patience=60)

    def test_the_run_goes_on():
        assert [t.name for t in threading.enumerate() if t.name in ("taker", "locker")] == []
"""


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_subject=textwrap.dedent(source))
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--deadlock-timeout", FAST, "test_subject.py",
        *args, timeout=RUN_LIMIT,
    )


def test_every_thread_blocked_under_a_helpers_patience_is_a_deadlock_now(pytester: pytest.Pytester) -> None:
    started = time.monotonic()
    result = _run(pytester, ALL_BLOCKED, "--durations=0")
    took = time.monotonic() - started
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines([
        "*DeadlockError: deadlock: every thread of the test (2) has been blocked for 0.3 s*",
        "*thread 'taker' holds nothing",
        "*waits for `jobs` (Queue made at test_subject.py:*) in Queue.get()",
        "*thread 'MainThread' holds nothing",
        "*waits for join() of thread 'taker' (Background.outcome: 60 s, then the test fails)",
    ])
    result.stdout.fnmatch_lines(["*waits for join() of thread 'calling wait' (within(60 s), then the test fails)"])
    result.stdout.fnmatch_lines([
        "*waits for thread 'locker' to sleep in Condition.wait (wait_until_blocked: 60 s, then the test fails)",
        "*at test_subject.py:* in test_wait_until_blocked_on_a_thread_stuck_on_a_lock: wait_until_blocked(*",
    ])
    # Each one ends about deadlock_timeout after it blocked, not after its 60 s.
    for line in result.stdout.lines:
        if " call " in line and "test_subject.py::" in line and "goes_on" not in line:
            assert float(line.split("s", 1)[0]) < 5, line
    assert took < 40, f"the run took {took:.0f} s"


MAKES_PROGRESS = """
    import queue
    import threading
    import time

    from pytest_concurrency.testing import Background, wait_until_blocked, within

    def slow_producer(jobs, n):
        pause = threading.Event()
        for i in range(n):
            pause.wait(0.4)  # a timed wait: this thread is not blocked for good
            jobs.put(i)

    def consume(jobs, n):
        return [jobs.get() for _ in range(n)]  # blocked with no timeout between two items

    def test_background_while_a_producer_takes_its_time():
        jobs = queue.Queue()
        threading.Thread(target=slow_producer, args=(jobs, 4), name="producer").start()
        got = Background(consume, jobs, 4, name="consumer", patience=60).outcome("consume")
        assert got == [0, 1, 2, 3]

    def test_within_while_a_producer_takes_its_time():
        jobs = queue.Queue()
        threading.Thread(target=slow_producer, args=(jobs, 3), name="producer").start()
        assert within(60, consume, jobs, 3) == [0, 1, 2]

    def test_wait_until_blocked_on_a_thread_that_first_works_a_while():
        ready = threading.Event()
        def late_waiter():
            time.sleep(1.0)
            ready.wait()
        job = Background(late_waiter, name="late", patience=60)
        wait_until_blocked(job, "a thread that waits after a second of work", patience=60)
        ready.set()
        job.outcome("late_waiter")

    def test_a_pool_task_still_running_can_still_call_back():
        import multiprocessing
        done = threading.Event()
        def waits_for_the_callback():
            with multiprocessing.get_context("fork").Pool(1) as pool:
                pool.apply_async(time.sleep, (1.5,), callback=lambda _: done.set())
                done.wait()
                pool.close()
                pool.join()
        within(60, waits_for_the_callback)
"""


def test_no_deadlock_while_some_thread_makes_progress(pytester: pytest.Pytester) -> None:
    result = _run(pytester, MAKES_PROGRESS, "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=4)


IDLE_POOL = """
    import multiprocessing
    import threading

    from pytest_concurrency.testing import within

    def test_a_callback_that_never_comes_from_an_idle_pool():
        done = threading.Event()
        def waits_for_a_callback_of_a_failed_task():
            pool = multiprocessing.get_context("fork").Pool(2)
            pool.apply_async(divmod, (1, 0), callback=lambda _: done.set())  # raises: no callback
            done.wait()
        within(60, waits_for_a_callback_of_a_failed_task)
"""


def test_an_idle_process_pool_cannot_wake_anyone(pytester: pytest.Pytester) -> None:
    started = time.monotonic()
    result = _run(pytester, IDLE_POOL, "-W", "ignore::DeprecationWarning")
    took = time.monotonic() - started
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*DeadlockError: deadlock: every thread of the test (2) has been blocked*",
        "*waits for `done` (Event made at test_subject.py:*) in Event.wait()",
        "*the threads of a multiprocessing pool that has no task left*",
    ])
    assert took < 40, f"the run took {took:.0f} s"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork start method")
def test_exercise_12_with_a_lost_callback_fails_at_once(pytester: pytest.Pytester) -> None:
    """A student's submit_all that waits for callbacks and forgets error_callback."""
    impl = pytester.path / "impl"
    source = (ROOT / "solutions" / "12_process_pool" / "pool_tasks.py").read_text(encoding="utf-8")
    start, end = source.index("def submit_all"), source.index("def first_result")
    student = textwrap.dedent('''
        def submit_all(fn, items, processes, callback):
            import threading
            items = list(items)
            done, lock, results = threading.Event(), threading.Lock(), {}

            def note(i, value):
                with lock:
                    results[i] = value
                    callback(value)
                    if len(results) == len(items):
                        done.set()

            pool = multiprocessing.Pool(processes)
            for i, item in enumerate(items):
                pool.apply_async(fn, (item,), callback=lambda v, i=i: note(i, v))
            done.wait()
            pool.close()
            pool.join()
            return [results[i] for i in range(len(items))]


    ''')
    (impl / "12_process_pool").mkdir(parents=True)
    (impl / "12_process_pool" / "pool_tasks.py").write_text(source[:start] + student + source[end:])
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(ROOT), "-c", str(ROOT / "pytest.ini"),
        str(ROOT / "exercises" / "12_process_pool"), "--impl", str(impl), "-k", "submit_all",
        timeout=RUN_LIMIT,
    )
    took = time.monotonic() - started
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*deadlock: every thread of the test (2) has been blocked*",
                                 "*pool_tasks.py:* in submit_all: done.wait()"])
    assert took < 15, f"the run took {took:.0f} s (within's patience is 20 s)"


ALARM_IN_A_REPORT = """
import signal
import time

import pytest


def _fail(signum, frame):
    pytest.fail("Timeout (>0.05s) from the alarm")


@pytest.hookimpl(trylast=True)
def pytest_runtest_setup(item):
    signal.signal(signal.SIGALRM, _fail)
    signal.setitimer(signal.ITIMER_REAL, 0.05)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    if call.when == "setup":  # the alarm comes due while setup's report is made
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            pass
    return (yield)
"""


def test_an_alarm_due_while_a_report_is_made_fails_the_next_phase_not_the_run(
    pytester: pytest.Pytester,
) -> None:
    # pytest-timeout's signal method raises wherever the alarm lands; inside the
    # making of a report that was an INTERNALERROR, and no score table.
    pytester.makeconftest(ALARM_IN_A_REPORT)
    pytester.makepyfile(test_alarm="import time\n\ndef test_slow():\n    time.sleep(2)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout (>0.05s) from the alarm*"])
