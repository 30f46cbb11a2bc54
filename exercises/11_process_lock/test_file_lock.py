"""Graded tests of exercise 11: records appended to one file by many processes under one lock.

Lost or interleaved records are made likely, not left to luck: several
processes append many records, each line written and flushed on its own, so
that without the lock other processes' lines land inside a record on every
run.  The tests run under both start methods (``fork``, and ``spawn`` as on
macOS and Windows).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from pytest_concurrency import load_impl
from pytest_concurrency.testing import children, process_status, start_method, within  # noqa: F401  (fixtures)

file_lock = load_impl("file_lock")

# Generous: a correct implementation needs a fraction of a second, but the
# machine may be busy.  Only a broken implementation ever waits this long.
PATIENCE = 20.0

pytestmark = pytest.mark.filterwarnings(
    # Python 3.12+ warns when forking while threads run; the tests' watchdog is a thread.
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)




# --- reading the file back -----------------------------------------------------------------


def record(writer: int, r: int) -> list[str]:
    return [f"begin {writer} {r}", f"body {writer} {r}", f"end {writer} {r}"]


def check_records(path: Path, n_processes: int, records_per_process: int) -> None:
    """Fail, saying what went wrong first, unless ``path`` holds exactly the expected records."""
    assert path.exists(), f"{path.name} was never written"
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, int]] = []
    k = 0
    while k < len(lines):
        words = lines[k].split()
        if len(words) != 3 or words[0] != "begin":
            raise AssertionError(
                f"line {k + 1} is {lines[k]!r} where a record should begin: records were "
                f"interleaved (lines {max(1, k - 2)}-{k + 3}: {lines[max(0, k - 3):k + 3]})"
            )
        writer, r = int(words[1]), int(words[2])
        expected = record(writer, r)
        got = lines[k:k + 3]
        if got != expected:
            raise AssertionError(
                f"record ({writer}, {r}) starting at line {k + 1} was interleaved with another "
                f"process's lines: expected {expected}, found {got}"
            )
        found.append((writer, r))
        k += 3
    expected_records = {(i, r) for i in range(n_processes) for r in range(records_per_process)}
    missing = expected_records - set(found)
    duplicated = len(found) - len(set(found))
    unexpected = set(found) - expected_records
    assert not missing, (
        f"{len(missing)} of {len(expected_records)} records were lost, e.g. {sorted(missing)[:5]}"
    )
    assert not duplicated, f"{duplicated} records were written twice"
    assert not unexpected, f"records nobody should have written: {sorted(unexpected)[:5]}"


class RecordingLock:
    """A real ``multiprocessing.Lock`` that notes what the file held each time it was taken and given back."""

    def __init__(self, path: Path) -> None:
        self._lock = multiprocessing.Lock()
        self._path = path
        self.events: list[tuple[str, str]] = []

    def _content(self) -> str:
        return self._path.read_text(encoding="utf-8") if self._path.exists() else ""

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        acquired = self._lock.acquire(block, timeout)
        if acquired:
            self.events.append(("acquire", self._content()))
        return acquired

    def release(self) -> None:
        self.events.append(("release", self._content()))
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


# --- append_record --------------------------------------------------------------------------


@pytest.mark.points(2)
def test_append_record_appends_each_line(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("already there\n", encoding="utf-8")
    lock = multiprocessing.Lock()
    file_lock.append_record(str(path), record(0, 0), lock)
    file_lock.append_record(str(path), record(0, 1), lock)
    expected = ["already there", *record(0, 0), *record(0, 1)]
    assert path.read_text(encoding="utf-8") == "\n".join(expected) + "\n", (
        f"expected the lines {expected} (each ending with a newline, appended after what was there)"
    )
    assert lock.acquire(timeout=1), "append_record returned with the lock still held"


@pytest.mark.points(3)
def test_append_record_writes_the_whole_record_under_one_hold_of_the_lock(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("already there\n", encoding="utf-8")
    lock = RecordingLock(path)
    file_lock.append_record(str(path), record(3, 7), lock)
    before = "already there\n"
    after = before + "\n".join(record(3, 7)) + "\n"
    kinds = [kind for kind, _ in lock.events]
    assert kinds, "append_record never took the lock"
    assert kinds == ["acquire", "release"], (
        f"the lock went {kinds} for one record: take it once, write every line, then release it"
    )
    (_, at_acquire), (_, at_release) = lock.events
    assert at_acquire == before, (
        f"when the lock was taken the file already held {at_acquire!r}: write only while holding it"
    )
    assert at_release == after, (
        f"when the lock was released the file held {at_release!r}, not the whole record: "
        "write (and flush) every line before releasing"
    )


@pytest.mark.points(2)
@pytest.mark.parametrize("failure", ["opening fails", "writing fails"])
def test_append_record_releases_the_lock_when_writing_fails(tmp_path, failure):
    if failure == "opening fails":
        path = str(tmp_path / "no such folder" / "log.txt")
    else:
        path = "/dev/full"  # every write fails with "No space left on device"
        if not os.path.exists(path):
            pytest.skip("no /dev/full on this platform")
    lock = multiprocessing.Lock()
    with contextlib.suppress(OSError):
        file_lock.append_record(path, record(0, 0), lock)
    assert lock.acquire(timeout=1), (
        f"append_record left the lock held when {failure}: every later writer would wait forever "
        "(release it in a finally block, or use `with lock:`)"
    )


# --- run_writers ----------------------------------------------------------------------------


N_PROCESSES = 4
# Records per writer: enough that, without the lock, the writers' lines meet
# inside records on every run.  Spawned children start a fraction of a second
# apart on a busy machine, so they get as many records as forked ones: each
# writer writes for longer than the others take to start.
RECORDS = {"fork": 1500, "spawn": 1500}


@pytest.mark.points(5)
def test_writers_never_interleave_and_lose_nothing(start_method, children, tmp_path):
    """With the lock, every record is whole and present once.

    Without it (no_lock, lock_per_process, lock_per_line in
    tests/broken/11_process_lock), other processes' lines land inside records:
    measured, each failed 30 runs in a row out of 30 under fork and under spawn
    (2 cores, load average 9-11 from other work).  With 300 records under spawn
    instead of 1500, spawn caught them only 21 to 28 times out of 30.
    """
    path = tmp_path / "log.txt"
    records = RECORDS[start_method]
    within(PATIENCE, file_lock.run_writers, str(path), N_PROCESSES, records)
    children.assert_none_left("after run_writers returned")
    check_records(path, N_PROCESSES, records)


@pytest.mark.points(2)
def test_run_writers_returns_only_after_every_writer_ended(children, tmp_path):
    path = tmp_path / "log.txt"
    within(PATIENCE, file_lock.run_writers, str(path), 4, 20)
    running = [p.pid for p in children.new() if process_status(p) != psutil.STATUS_ZOMBIE]
    assert not running, f"run_writers returned while writers {running} were still running"
    lines = len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0
    assert lines == 4 * 20 * 3, (
        f"run_writers returned when {lines} of {4 * 20 * 3} lines were written: join every writer"
    )
    children.assert_none_left("after run_writers returned")
    check_records(path, 4, 20)


@pytest.mark.points(3)
def test_run_writers_uses_the_lock_it_is_given_in_child_processes(children, tmp_path):
    """While the test holds the lock it passed in, no writer may write a line."""
    fork = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    if fork is None:
        pytest.skip("needs the fork start method")
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("fork", force=True)  # children start in milliseconds
    path = tmp_path / "log.txt"
    lock = multiprocessing.Lock()
    lock.acquire()
    outcome: dict = {}

    def run() -> None:
        try:
            file_lock.run_writers(str(path), 2, 3, lock)
        except BaseException as error:
            outcome["error"] = error

    runner = threading.Thread(target=run, name="run_writers", daemon=True)
    try:
        runner.start()
        deadline = time.monotonic() + PATIENCE
        writers: set[int] = set()
        while time.monotonic() < deadline and runner.is_alive() and len(writers) < 2:
            writers |= {p.pid for p in children.new()}
            time.sleep(0.01)
        if "error" in outcome:
            raise outcome["error"]
        assert writers, "run_writers started no child processes (threads are not processes)"
        # The writers are running: give them every chance to write (they must not).
        grace = time.monotonic() + 1.0
        while time.monotonic() < grace and not (path.exists() and path.stat().st_size):
            time.sleep(0.01)
        written = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        assert not written, (
            f"while the test held the lock it passed to run_writers, the writers wrote "
            f"{written[:3]}...: every writer must use that lock"
        )
    finally:
        lock.release()
        runner.join(PATIENCE)
        multiprocessing.set_start_method(previous, force=True)
    assert not runner.is_alive(), f"run_writers did not return within {PATIENCE:g} s"
    if "error" in outcome:
        raise outcome["error"]
    children.assert_none_left("after run_writers returned")
    check_records(path, 2, 3)


@pytest.mark.points(3)
def test_a_failing_writer_makes_run_writers_raise(children):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this platform")
    # Every write to /dev/full fails: each writer dies with "No space left on device".
    with pytest.raises(RuntimeError) as failure:
        within(PATIENCE, file_lock.run_writers, "/dev/full", 3, 2)
    if isinstance(failure.value, NotImplementedError):  # a RuntimeError too, but not this one
        raise failure.value
    children.assert_none_left("after run_writers raised (join every writer, also when some failed)")
