"""The one process watch: ``testing.Children`` (the ``children`` fixture, ``within``) and
``ProcessGuard`` (the ``process_guard`` fixture, hygiene) find, dump and kill the same way.

In this process: a forked child that starts a grandchild (``sleep``) and then
waits for ever.  Both faces of the watch, begun before it, must find both
processes; either one's report must show the child's Python stack; either one
must kill the whole tree and reap the child so that ``multiprocessing`` knows
it ended; and afterwards neither sees anything running.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pytest_concurrency.hygiene.processes import ProcessGuard, ProcessWatch, still_running
from pytest_concurrency.testing import Children

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGUSR1") or not Path("/proc/self/status").exists()
    or "fork" not in multiprocessing.get_all_start_methods(),
    reason="child dumps need fork, SIGUSR1 and Linux's /proc",
)


def _note(folder: str, name: str, pid: int) -> None:
    path = os.path.join(folder, name)
    with open(path + ".tmp", "w") as file:
        file.write(str(pid))
    os.replace(path + ".tmp", path)


def _hang_with_a_grandchild(folder: str) -> None:
    grandchild = subprocess.Popen(["sleep", "60"])
    _note(folder, "grandchild", grandchild.pid)
    _note(folder, "child", os.getpid())
    while True:
        time.sleep(0.05)  # where the child is


def _wait_for(path: Path) -> int:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never started"
        time.sleep(0.01)
    return int(path.read_text())


@pytest.fixture
def family(tmp_path: Path):
    """Start the child (and through it the grandchild); the Process and both pids."""
    child = multiprocessing.get_context("fork").Process(target=_hang_with_a_grandchild, args=(str(tmp_path),))
    child.start()
    try:
        pids = (_wait_for(tmp_path / "child"), _wait_for(tmp_path / "grandchild"))
        assert pids[0] == child.pid
        yield child, pids
    finally:
        if child.is_alive():  # the test failed before its watch killed them
            os.kill(pids[1], signal.SIGKILL)
            child.kill()
        child.join(10)


@pytest.mark.parametrize("killer", ["children", "process_guard", "the child's tree"])
def test_both_faces_find_dump_and_kill_the_same_processes(killer: str, tmp_path: Path, request) -> None:
    children, guard = Children(), ProcessGuard()
    assert isinstance(children, ProcessWatch) and isinstance(guard, ProcessWatch)
    child, pids = request.getfixturevalue("family")
    later = ProcessWatch()  # begun after they started: none of its business

    for found in (children.new(), children.running(), guard.started(), guard.alive()):
        assert {p.pid for p in found} == set(pids)
    assert later.started() == []

    if killer == "the child's tree":  # killing the top of a tree kills all of it
        report = children.stacks()
        [top] = [p for p in guard.alive() if p.pid == child.pid]
        guard.kill([top])
    elif killer == "children":
        report = children.stop()
        assert report is not None
        assert "2 child process(es) still running, and where each one was:" in report
    else:
        report = guard.stop_survivors()
        assert report is not None
        assert "2 child process(es) started by the test were still running:" in report
        assert "They were killed, with their children." in report
    assert "in _hang_with_a_grandchild" in report, report  # the child's dump, not the parent's
    assert "sleep 60" in report  # the grandchild: described, not signalled (it cannot dump)

    assert still_running(pids) == []
    assert child.exitcode == -signal.SIGKILL, "the killed child is reaped through multiprocessing"
    assert children.running() == [] and guard.alive() == []
    assert children.new() == [] and guard.started() == []  # reaped, not left as zombies
    assert children.stop() is None and guard.stop_survivors() is None


def test_a_child_that_ended_unjoined_is_started_but_not_alive(tmp_path: Path) -> None:
    watch = Children()
    child = multiprocessing.get_context("fork").Process(target=_note, args=(str(tmp_path), "done", 0))
    child.start()
    _wait_for(tmp_path / "done")
    deadline = time.monotonic() + 30
    while watch.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watch.running() == []
    assert [p.pid for p in watch.new()] == [child.pid], "a zombie is still there until joined"
    with pytest.raises(AssertionError, match=r"1 child process\(es\) still there after it ended: pid \d+ \(zombie\)"):
        watch.assert_none_left("after it ended")
    assert watch.new() == []
    assert child.exitcode == 0, "reaped through multiprocessing"
