"""A hung child process is dumped (its Python stack, with file and line) and killed, under fork and spawn.

Each test runs pytest in a subprocess on a small test file whose child
processes run functions of ``stuck.py`` (importable by name, so that they
pickle under ``spawn``).  The children write their pid to a file first: the
outer test checks that they were killed, and never waits on luck to find them
started (the inner test waits for those files).
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from multiprocessing import spawn
from pathlib import Path

import pytest

from pytest_concurrency.hygiene import processes as _processes

pytestmark = pytest.mark.skipif(
    not hasattr(__import__("signal"), "SIGUSR1") or not Path("/proc/self/status").exists(),
    reason="child dumps need SIGUSR1 and Linux's /proc",
)

START_METHODS = ["fork", "spawn"]

STUCK = '''
import os
import time


def note_pid(folder):
    # Written whole, then renamed: the parent never sees a half-made pid file.
    path = os.path.join(folder, f"{os.getpid()}")
    with open(path + ".tmp", "w") as file:
        file.write("started")
    os.replace(path + ".tmp", path + ".pid")


def wait_for_ever(folder):
    note_pid(folder)
    while True:
        time.sleep(0.05)  # the line a dump must show


def wait_for_ever_in_a_pool(folder):
    wait_for_ever(folder)
'''

HELPERS = '''
import multiprocessing
import os
import time

import stuck


def wait_for_pid_files(folder, count):
    """Children are armed once they run: wait (bounded) until ``count`` of them said so."""
    deadline = time.monotonic() + 60
    while len([n for n in os.listdir(folder) if n.endswith(".pid")]) < count:
        assert time.monotonic() < deadline, "the children never started"
        time.sleep(0.02)
'''


def _stuck_line() -> re.Pattern[str]:
    """How faulthandler names where a stuck child is: its loop's two lines (mostly the sleep),
    or, when the dump came the moment its pid file appeared, the end of ``note_pid``."""
    sleep = STUCK.splitlines().index("        time.sleep(0.05)  # the line a dump must show")
    return re.compile(rf'stuck\.py", line (({sleep}|{sleep - 1}) in wait_for_ever|\d+ in note_pid)\n')


STUCK_LINE = _stuck_line()


def pids_noted(folder: Path) -> list[int]:
    return [int(p.stem) for p in folder.glob("*.pid")]


def assert_all_gone(pids: list[int]) -> None:
    assert pids, "no child noted its pid: the inner test never started one"
    alive = _processes.still_running(pids)
    assert not alive, f"children {alive} outlived the test run"


@pytest.fixture
def project(pytester: pytest.Pytester, tmp_path: Path) -> Path:
    pytester.makepyfile(stuck=STUCK, helpers=HELPERS)
    folder = tmp_path / "pids"
    folder.mkdir()
    return folder


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args, timeout=120)


@pytest.mark.parametrize("method", START_METHODS)
def test_process_guard_dumps_a_hung_child_with_its_file_and_line(
    pytester: pytest.Pytester, project: Path, method: str
) -> None:
    pytester.makepyfile(test_inner=f'''
        from helpers import *

        def test_leaves_a_child_running(process_guard):
            child = multiprocessing.get_context({method!r}).Process(target=stuck.wait_for_ever, args=({str(project)!r},))
            child.start()
            wait_for_pid_files({str(project)!r}, 1)
    ''')
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "1 child process(es) started by the test were still running" in output
    assert STUCK_LINE.search(output), output
    assert_all_gone(pids_noted(project))


@pytest.mark.parametrize("method", START_METHODS)
def test_within_shows_the_hung_call_and_the_tests_children_and_kills_them(
    pytester: pytest.Pytester, project: Path, method: str
) -> None:
    pytester.makepyfile(test_inner=f'''
        from helpers import *
        from pytest_concurrency.testing import children, within  # noqa: F401

        def join_all(processes):
            for process in processes:
                process.join()

        def test_hangs():
            context = multiprocessing.get_context({method!r})
            processes = [context.Process(target=stuck.wait_for_ever, args=({str(project)!r},)) for _ in range(2)]
            for process in processes:
                process.start()
            wait_for_pid_files({str(project)!r}, 2)
            within(1, join_all, processes)
    ''')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "join_all did not return within 1 s: it hangs" in output
    assert "process.join()" in output, "the parent's stack (where the call waits) is missing"
    assert "2 child process(es) still running" in output
    assert len(STUCK_LINE.findall(output)) == 2, output
    assert "They were killed." in output
    assert "ERROR at teardown" not in output, "killed by within, the children are not reported twice"
    assert_all_gone(pids_noted(project))


@pytest.mark.parametrize("method", START_METHODS)
def test_hung_pool_workers_are_dumped(pytester: pytest.Pytester, project: Path, method: str) -> None:
    pytester.makepyfile(test_inner=f'''
        from helpers import *
        from pytest_concurrency.testing import children, within  # noqa: F401

        def test_hangs():
            pool = multiprocessing.get_context({method!r}).Pool(2)
            result = pool.map_async(stuck.wait_for_ever_in_a_pool, [{str(project)!r}] * 2, chunksize=1)
            wait_for_pid_files({str(project)!r}, 2)
            within(1, result.get)
    ''')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "get did not return within 1 s" in output
    assert output.count("in wait_for_ever_in_a_pool") == 2, output
    assert_all_gone(pids_noted(project))


@pytest.mark.parametrize("method", START_METHODS)
def test_the_children_fixture_fails_a_test_that_leaves_a_child_running(
    pytester: pytest.Pytester, project: Path, method: str
) -> None:
    pytester.makepyfile(test_inner=f'''
        from helpers import *
        from pytest_concurrency.testing import children  # noqa: F401

        def test_leaves_one_running():
            child = multiprocessing.get_context({method!r}).Process(target=stuck.wait_for_ever, args=({str(project)!r},))
            child.start()
            wait_for_pid_files({str(project)!r}, 1)

        def test_joins_its_child():
            child = multiprocessing.get_context({method!r}).Process(target=stuck.note_pid, args=({str(project)!r},))
            child.start()
            child.join()
    ''')
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    output = result.stdout.str()
    assert "ERROR at teardown of test_leaves_one_running" in output
    assert STUCK_LINE.search(output), output
    assert_all_gone(pids_noted(project))


def test_a_child_that_cannot_dump_is_killed_not_signalled(pytester: pytest.Pytester) -> None:
    """A non-Python child ignores nothing: SIGUSR1 would kill it, so it is described, then killed."""
    pytester.makepyfile(test_inner='''
        import subprocess

        def test_leaves_sleep_running(process_guard):
            subprocess.Popen(["sleep", "60"])
    ''')
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "sleep 60" in output
    assert "no Python stack" in output


def test_spawned_children_are_armed_only_while_a_test_runs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
        from multiprocessing import spawn

        seen = []

        def pytest_collection_finish(session):
            seen.append(getattr(spawn.get_preparation_data, "arms_dumps", False))

        def pytest_sessionfinish():
            seen.append(getattr(spawn.get_preparation_data, "arms_dumps", False))
            print("armed before and after the tests:", seen)
    ''')
    pytester.makepyfile(test_inner='''
        from multiprocessing import spawn

        def test_armed():
            assert spawn.get_preparation_data("x")["pytest_concurrency_dumps"] is not None
    ''')
    result = run(pytester, "-s")
    result.assert_outcomes(passed=1)
    assert "armed before and after the tests: [False, False]" in result.stdout.str()


def test_the_arming_object_arms_a_fresh_interpreter_with_the_standard_library_alone() -> None:
    """What a spawned child unpickles registers faulthandler for SIGUSR1 and imports nothing of ours."""
    assert _processes._dump_file is not None, "the plugin enables child dumps for the session"
    arming = pickle.dumps(spawn.get_preparation_data("worker")[_processes._PREPARATION_KEY])
    child = subprocess.run(
        [sys.executable, "-c", (
            "import os, pickle, signal, sys; pickle.loads(sys.stdin.buffer.read()); "
            "caught = [l for l in open(f'/proc/{os.getpid()}/status') if l.startswith('SigCgt:')][0]; "
            "print(int(caught.split()[1], 16) >> (signal.SIGUSR1 - 1) & 1, "
            "any(m.startswith('pytest_concurrency') for m in sys.modules))"
        )],
        input=arming, capture_output=True, timeout=60, check=True,
    )
    assert child.stdout.split() == [b"1", b"False"], child
