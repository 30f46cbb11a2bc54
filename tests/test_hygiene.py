"""Hygiene after exercise tests, and at the end of the session: real pytest runs in subprocesses.

Exercise tests are tests inside an ``NN_name`` folder; these runs put their
test file in ``07_demo/``.  Each leaking test is followed by one that checks
that it starts clean.
"""

from __future__ import annotations

import os
import textwrap
import time

import pytest

from pytest_concurrency.hygiene.processes import still_running

RUN_LIMIT = 120


def run(pytester: pytest.Pytester, source: str, *args: str, folder: str | None = "07_demo"):
    code = textwrap.dedent(source)
    if folder is None:
        pytester.makepyfile(test_subject=code)
        target = "test_subject.py"
    else:
        pytester.mkdir(folder)
        (pytester.path / folder / "test_subject.py").write_text(code)
        target = f"{folder}/test_subject.py"
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--deadlock-timeout", "0.3", target, *args, timeout=RUN_LIMIT
    )


def test_a_thread_left_running_fails_the_exercise_test_and_is_stopped(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading, time

        def spin(stop):
            while not stop:
                time.sleep(0.01)

        def test_leaks_a_spinning_and_a_waiting_thread():
            threading.Thread(target=spin, args=([],), name="leaked-spinner", daemon=True).start()
            never = threading.Event()
            threading.Thread(target=never.wait, name="leaked-waiter", daemon=True).start()

        def test_starts_clean():
            names = [t.name for t in threading.enumerate()]
            assert not [n for n in names if n.startswith("leaked")], names
    """)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leaks_a_spinning_and_a_waiting_thread*",
        "*2 thread(s) started by the test were still running after it:*",
    ])
    out = result.stdout.str()
    assert "thread 'leaked-spinner' (daemon)" in out
    assert "in spin" in out
    assert "thread 'leaked-waiter' (daemon)" in out
    assert "waits for `never` (Event made at 07_demo/test_subject.py:" in out
    assert ") in Event.wait()" in out
    assert "Could not stop" not in out


def test_users_tests_are_not_failed_unless_they_ask(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading, pytest

        def test_users_own_test_leaks_quietly():
            threading.Thread(target=threading.Event().wait, name="leaked", daemon=True).start()

        @pytest.mark.hygiene
        def test_opted_in():
            threading.Thread(target=threading.Event().wait, name="leaked-2", daemon=True).start()
    """, folder=None)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_opted_in*"])


def test_an_exception_in_an_unjoined_thread_fails_the_exercise_test(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import threading

        def test_worker_crashes():
            def work():
                raise ValueError("the worker broke")
            t = threading.Thread(target=work, name="worker-crash")
            t.start()
            t.join()
    """)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*exception in thread 'worker-crash', which nobody could see*",
        "*ValueError: the worker broke*",
    ])


def test_a_non_daemon_thread_left_behind_never_keeps_pytest_from_exiting(pytester: pytest.Pytester) -> None:
    # A users' test (not failed), whose non-daemon thread would block forever at exit.
    started = time.monotonic()
    result = run(pytester, """
        import _thread, threading

        def test_leaves_a_non_daemon_thread_blocked_outside_python():
            raw = _thread.allocate_lock()
            raw.acquire()
            threading.Thread(target=raw.acquire, name="forever", daemon=False).start()

        def test_leaves_one_blocked_on_a_watched_event():
            threading.Thread(target=threading.Event().wait, name="forever-2", daemon=False).start()
    """, folder=None)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    result.stderr.fnmatch_lines(["*non-daemon thread(s) 'forever' left by a test*exiting without waiting*"])
    assert time.monotonic() - started < RUN_LIMIT / 2


def test_a_process_left_alive_is_dumped_killed_and_fails_the_test(pytester: pytest.Pytester) -> None:
    pid_file = pytester.path / "child.pid"
    result = run(pytester, f"""
        import multiprocessing, os, time

        def hang_in_the_child():
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(os.getpid()))
            while True:
                time.sleep(0.05)

        def test_starts_a_child_and_forgets_it():
            child = multiprocessing.get_context("fork").Process(target=hang_in_the_child, daemon=True)
            child.start()
            for _ in range(500):
                if os.path.exists({str(pid_file)!r}):
                    break
                time.sleep(0.01)

        def test_starts_clean():
            import psutil
            assert psutil.Process().children() == []
    """)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*1 child process(es) started by the test were still running:*",
        "*pid *",
        "*in hang_in_the_child*",
        "*They were killed, with their children*",
    ])
    pid = int(pid_file.read_text())
    assert not still_running([pid]), f"the child {pid} is still running"


def test_a_hung_child_under_pytest_timeout_is_dumped_and_killed(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import multiprocessing, threading

        def wait_forever():
            threading.Event().wait()

        def test_joins_a_child_that_never_ends():
            child = multiprocessing.get_context("fork").Process(target=wait_forever)
            child.start()
            child.join()

        def test_the_run_goes_on():
            pass
    """, "--exercise-timeout", "3")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*Timeout (>3.0s) from pytest-timeout*",
    ])
    result.stdout.fnmatch_lines([
        "*child process(es) started by the test were still running*",
        "*in wait_forever*",
    ])


def test_process_guard_fixture_in_a_users_test(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import subprocess, sys

        def test_guarded(process_guard):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            assert [p.pid for p in process_guard.alive()] == [child.pid]

        def test_guarded_and_clean(process_guard):
            child = subprocess.Popen([sys.executable, "-c", "pass"])
            child.wait()
    """, folder=None)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_guarded*",
        "*1 child process(es) started by the test were still running:*",
        "*time.sleep(60)*",
        "*(no Python stack:*",  # the wording is _processes.py's
    ])


def test_the_kit_solutions_stay_clean(pytester: pytest.Pytester) -> None:
    """Hygiene must never fail a correct pool: the model exercise against its solution."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--rootdir", root, "-c", os.path.join(root, "pytest.ini"),
        os.path.join(root, "exercises", "07_thread_pool"), "--impl", os.path.join(root, "solutions"),
        timeout=RUN_LIMIT,
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 11 and set(outcomes) <= {"passed"}, outcomes
