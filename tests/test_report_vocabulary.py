"""Every report names a lock, a thread and a line the same way (``pytest_concurrency._frames``).

One user module, ``subject.py``, makes two locks at known lines and takes them
in opposite orders.  One pytest run (a subprocess) provokes each report:

1. a controlled deadlock (``schedule.run`` raises DeadlockError),
2. a real deadlock (the watchdog),
3. a lock-order inversion in a test that passes,
4. a leaked thread (hygiene),

and each one must name ``self.a`` as "`self.a` (Lock made at subject.py:5)",
a thread as ``thread 'NAME'`` and a line as ``subject.py:LINE in FUNCTION:
SOURCE``, with no path inside the plugin and no absolute path of the user file.
"""

from __future__ import annotations

import re
import textwrap

import pytest

SUBJECT = '''\
import threading


class Pair:
    def __init__(self, meet=False):
        self.a = threading.Lock()
        self.b = threading.Lock()
        self.meet = threading.Barrier(2) if meet else None

    def forward(self):
        with self.a:
            self._both_hold_one()
            with self.b:
                pass

    def backward(self):
        with self.b:
            self._both_hold_one()
            with self.a:
                pass

    def take_a(self):
        with self.a:
            pass

    def _both_hold_one(self):
        if self.meet is not None:
            self.meet.wait()
'''
# (the line numbers below are those of SUBJECT)
LOCK_A = "`self.a` (Lock#1 made at subject.py:6)"
LOCK_B = "`self.b` (Lock#2 made at subject.py:7)"
FORWARD_A = "subject.py:11 in forward: with self.a:"
FORWARD_B = "subject.py:13 in forward: with self.b:"
BACKWARD_B = "subject.py:17 in backward: with self.b:"
BACKWARD_A = "subject.py:19 in backward: with self.a:"
TAKE_A = "subject.py:23 in take_a: with self.a:"

TESTS = '''\
import threading
import time

import pytest
from hypothesis import given, settings
from pytest_concurrency import DeadlockError, schedules

from subject import Pair


@settings(derandomize=True, database=None, max_examples=5)
@given(schedules())
def test_controlled(schedule):
    pair = Pair(meet=True)
    try:
        schedule.run(pair.forward, pair.backward)
    except DeadlockError as error:  # its message only (pytest's traceback shows the plugin)
        message = str(error)
    else:
        return
    pytest.fail(message, pytrace=False)


def _in_threads(pair, together):
    threads = [threading.Thread(target=f, name="worker-" + f.__name__) for f in (pair.forward, pair.backward)]
    if together:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for t in threads:
            t.start()
            t.join()


def test_real():
    _in_threads(Pair(meet=True), together=True)


@pytest.mark.hygiene
def test_inversion():
    _in_threads(Pair(), together=False)


@pytest.mark.hygiene
def test_leak():
    pair = Pair()
    pair.a.acquire()
    threading.Thread(target=pair.take_a, name="worker-leaked", daemon=True).start()
    time.sleep(0.2)
'''


def sections(output: str) -> dict[str, str]:
    """The report of each test, by name, from pytest's failures and errors."""
    parts = re.split(r"^_{3,} (?:ERROR at teardown of )?(test_\w+)(?:\[.*?\])? _{3,}$", output, flags=re.M)
    found: dict[str, str] = {}
    for name, text in zip(parts[1::2], parts[2::2], strict=True):
        found[name] = found.get(name, "") + text
    return found


@pytest.fixture
def run(pytester: pytest.Pytester) -> dict[str, str]:
    pytester.makepyfile(subject=SUBJECT, test_subject=TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--deadlock-timeout", "0.3", "test_subject.py", timeout=120
    )
    result.assert_outcomes(failed=3, passed=1, errors=1)
    found = sections(result.stdout.str())
    found["_absolute"] = str(pytester.path / "subject.py")
    return found


def test_each_report_names_locks_threads_and_lines_the_same_way(run: dict[str, str]) -> None:
    absolute = run.pop("_absolute")
    assert set(run) == {"test_controlled", "test_real", "test_inversion", "test_leak"}, list(run)
    controlled, real, inversion, leak = (
        run[name] for name in ("test_controlled", "test_real", "test_inversion", "test_leak")
    )
    # The same lock, named the same way everywhere.
    for name, text in run.items():
        assert LOCK_A in text, f"{name}:\n{text}"
        assert "pytest_concurrency/" not in text and "pytest_concurrency\\" not in text, f"{name}:\n{text}"
        assert absolute not in text, f"{name}:\n{text}"
        assert re.search(r"thread '[^']+'", text), f"{name}:\n{text}"
    for text in (controlled, real, inversion):
        assert LOCK_B in text, text
    # Threads: `thread 'NAME'`, with the scheduler's names in a controlled run.
    assert "thread 'T1 (Pair.forward)' holds " + LOCK_A in controlled, controlled
    assert "thread 'T2 (Pair.backward)' holds " + LOCK_B in controlled, controlled
    assert "thread 'worker-forward' holds " + LOCK_A in real, real
    assert "thread 'worker-backward' holds " + LOCK_B in real, real
    assert "thread 'worker-backward' took " + LOCK_B in inversion, inversion
    assert "thread 'worker-forward' took " + LOCK_A in inversion, inversion
    assert "thread 'worker-leaked' (daemon)" in leak, leak
    # Lines: `subject.py:LINE in FUNCTION: SOURCE`, the same sites in every report.
    for text in (controlled, real):
        assert "waits for " + LOCK_B in text, text
        assert "waits for " + LOCK_A in text, text
        for site in (FORWARD_A, FORWARD_B, BACKWARD_B, BACKWARD_A):
            assert site in text, f"{site}\n{text}"
    for site in (FORWARD_A, FORWARD_B, BACKWARD_B, BACKWARD_A):
        assert site in inversion, f"{site}\n{inversion}"
    assert "waits for " + LOCK_A in leak, leak
    assert TAKE_A in leak, leak
    # The cycle, named with the threads' names.
    assert "thread 'T1 (Pair.forward)' -> thread 'T2 (Pair.backward)' -> thread 'T1 (Pair.forward)'" in controlled
    assert "thread 'worker-forward' -> thread 'worker-backward' -> thread 'worker-forward'" in real


def test_the_module_is_what_the_line_numbers_say() -> None:
    lines = textwrap.dedent(SUBJECT).splitlines()
    assert lines[5].strip() == "self.a = threading.Lock()"
    assert lines[6].strip() == "self.b = threading.Lock()"
    for site in (FORWARD_A, FORWARD_B, BACKWARD_B, BACKWARD_A, TAKE_A):
        number, source = re.fullmatch(r"subject\.py:(\d+) in \w+: (.*)", site).groups()
        assert lines[int(number) - 1].strip() == source
