"""gevent in real runs: LoopExit is a deadlock, a blocked event loop is reported, leaked greenlets.

Real pytest runs in subprocesses, plain and inside the fresh (monkey-patched)
interpreter of ``isolated`` tests.  Exercise tests are tests in an ``NN_name``
folder; those are strict (a blocked loop or a leaked greenlet fails them).
"""

from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("gevent")

RUN_LIMIT = 120


def run(pytester: pytest.Pytester, source: str, *args: str, folder: str | None = "15_demo"):
    code = textwrap.dedent(source)
    if folder is None:
        pytester.makepyfile(test_subject=code)
        target = "test_subject.py"
    else:
        pytester.mkdir(folder)
        (pytester.path / folder / "test_subject.py").write_text(code)
        target = f"{folder}/test_subject.py"
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", target, *args, timeout=RUN_LIMIT)


def test_loop_exit_is_a_deadlock_with_the_greenlet_tree(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import gevent, gevent.event

        def test_lost_wakeup():
            ready = gevent.event.Event()

            def consumer():
                ready.wait()

            def supervisor():
                worker = gevent.spawn(consumer)
                worker.join()

            gevent.spawn(supervisor).join()

        def test_the_run_goes_on():
            gevent.joinall([gevent.spawn(gevent.sleep, 0.01)])
    """)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*DeadlockError: deadlock: gevent's event loop has nothing left to run (LoopExit*",
        "*the test's main greenlet waits at:*",
        "    15_demo/test_subject.py:* in test_lost_wakeup: gevent.spawn(supervisor).join()",
        "*Greenlet tree*",
        "*+ greenlet * running test_lost_wakeup.<locals>.supervisor()*",
        "*worker.join()*",
        "*+ greenlet * running test_lost_wakeup.<locals>.consumer()*",
        "*ready.wait()*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_a_greenlet_blocking_the_loop_fails_an_exercise_test_with_its_stack(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import time, gevent

        def fetch_without_patching():
            time.sleep(1.5)   # a blocking call: nothing else runs meanwhile

        def ticker():
            for _ in range(10):
                gevent.sleep(0.01)

        def test_blocks_the_loop():
            gevent.joinall([gevent.spawn(fetch_without_patching), gevent.spawn(ticker)])

        def test_yields():
            gevent.joinall([gevent.spawn(gevent.sleep, 0.6), gevent.spawn(ticker)])

        def test_a_long_test_after_gevent_is_not_a_block():
            time.sleep(1.2)   # the test's own greenlet, nobody waits for the loop
    """)
    result.assert_outcomes(failed=1, passed=2)
    result.stdout.fnmatch_lines([
        "*FAILED*test_blocks_the_loop*",
    ])
    result.stdout.fnmatch_lines([
        "*gevent's event loop was blocked: 1 greenlet(s) ran for more than 0.5 s without yielding*",
        "*greenlet * running fetch_without_patching() blocked the loop for at least * s, here:*",
        "*15_demo/test_subject.py:* in fetch_without_patching: time.sleep(1.5)*",
    ])


def test_a_blocked_loop_in_a_users_test_is_a_warning(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import time, gevent

        def test_main_greenlet_blocks_while_another_waits():
            waiting = gevent.spawn(gevent.sleep, 0.05)
            gevent.sleep(0)
            time.sleep(1.5)
            waiting.join()
    """, "-W", "default", folder=None)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*EventLoopBlockedWarning: gevent's event loop was blocked*",
        "*the test's main greenlet blocked the loop for at least * s, here:*",
        "*time.sleep(1.5)*",
    ])


def test_a_leaked_greenlet_fails_the_exercise_test_and_is_killed(pytester: pytest.Pytester) -> None:
    result = run(pytester, """
        import gc, gevent, gevent.event

        def forever(event):
            event.wait()

        def test_leaks_a_greenlet():
            gevent.spawn(forever, gevent.event.Event())
            gevent.sleep(0)

        def test_starts_clean():
            alive = [g for g in gc.get_objects() if isinstance(g, gevent.Greenlet) and g and not g.dead]
            assert alive == []
    """)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leaks_a_greenlet*",
        "*1 greenlet(s) spawned by the test were still pending after it:*",
        "*15_demo/test_subject.py:* in forever: event.wait()",
        "*gevent.joinall(greenlets)*",
    ])


# ---------------------------------------------------------------- inside isolated children

PATCHING_MODULE = """
from gevent import monkey
monkey.patch_all()
import threading, time
"""

ISOLATED_TESTS = """
import time
import gevent, gevent.event, pytest
from pytest_concurrency import load_impl

pytestmark = pytest.mark.isolated(timeout=60)
demo = load_impl("demo")

def test_patched():
    assert demo.threading.Lock.__module__.startswith("gevent"), demo.threading.Lock

def test_lost_wakeup_with_patched_threading():
    ready = demo.threading.Event()

    def consumer():
        ready.wait()

    gevent.spawn(consumer).join()

def test_blocks_the_loop():
    def unpatched_sleep():
        gevent.monkey.get_original("time", "sleep")(1.5)

    def ticker():
        for _ in range(10):
            demo.time.sleep(0.01)

    gevent.joinall([gevent.spawn(unpatched_sleep), gevent.spawn(ticker)])

def test_clean():
    gevent.joinall([gevent.spawn(demo.time.sleep, 0.6), gevent.spawn(demo.time.sleep, 0.01)])
"""


def test_loop_exit_and_a_blocked_loop_are_reported_from_an_isolated_child(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest="[pytest]\naddopts = --import-mode=importlib -p no:randomly\n")
    folder = pytester.mkdir("exercises") / "90_demo"
    folder.mkdir()
    (folder / "demo.py").write_text(PATCHING_MODULE)
    (folder / "test_demo.py").write_text(ISOLATED_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "exercises", timeout=RUN_LIMIT)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*DeadlockError: deadlock: gevent's event loop has nothing left to run (LoopExit*",
        "*+ greenlet * running test_lost_wakeup_with_patched_threading.<locals>.consumer()*",
        "*ready.wait()*",
    ])
    result.stdout.fnmatch_lines([
        "*gevent's event loop was blocked*",
        "*running test_blocks_the_loop.<locals>.unpatched_sleep() blocked the loop*",
        "*get_original(\"time\", \"sleep\")(1.5)*",
    ])
