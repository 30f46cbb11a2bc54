"""The hostile suite: ``pytest-concurrency grade`` against submissions that fight back.

One grade run of ``tests/hostile/submission`` (a copy, in a temporary folder)
against the fake kit ``tests/hostile/kit`` is shared by the per-case tests:
every exercise must get exactly the points it earned (7/10 when only the
risky test fails, 0 when the module kills its process while it is imported,
10/10 for the sound one), within a bounded time, with nothing left running.
See ``tests/hostile/README.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

HOSTILE = Path(__file__).resolve().parent / "hostile"
KIT = HOSTILE / "kit"
# Short limits keep the suite lean; a correct test of the fake kit takes milliseconds.
LIMITS = ["--timeout", "90", "--test-timeout", "10", "--memory", "400", "--max-processes", "60",
          "--exit-grace", "3"]


def run_grade(submission: Path, out: Path, *extra: str, kit: Path = KIT,
              timeout: float = 400) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_concurrency", "grade", str(submission),
               "--kit", str(kit), "--out", str(out), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def leftovers(marker: str) -> list[str]:
    """Processes whose command line mentions ``marker`` (a path unique to one run)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if marker in cmdline and proc.info.get("status") != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.info['pid']}: {cmdline[:200]}")
    return found


class Graded:
    def __init__(self, root: Path, proc: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.root = root
        self.proc = proc
        self.seconds = seconds
        out = root / "out" / "results.json"
        assert out.exists(), f"no report written:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        self.report = json.loads(out.read_text(encoding="utf-8"))
        self.tests = {t["name"]: t for t in self.report["tests"]}
        self.left_running = leftovers(str(root / "submission"))

    def points(self, exercise: str) -> dict[str, float]:
        return {name.split("::")[-1]: t["score"] for name, t in self.tests.items()
                if name.startswith(exercise + "/")}

    def output(self, exercise: str, test: str) -> str:
        return next(t["output"] for n, t in self.tests.items()
                    if n.startswith(exercise + "/") and n.endswith("::" + test))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(HOSTILE / "submission", root / "submission")
    (root / "out").mkdir()
    started = time.monotonic()
    proc = run_grade(root / "submission", root / "out" / "results.json", "--jobs", "2", *LIMITS)
    return Graded(root, proc, time.monotonic() - started)


EARNED_7 = {"test_first": 2.0, "test_risky": 0.0, "test_last": 5.0}


def test_the_grade_is_produced_and_exits_0(graded: Graded):
    assert graded.proc.returncode == 0, graded.proc.stderr[-3000:]
    assert graded.report["max_score"] == 140


def test_nothing_the_submission_started_is_left_running(graded: Graded):
    assert graded.left_running == []


def test_grading_takes_a_bounded_time(graded: Graded):
    # 14 exercises, two hangs of at most 10 s each; generous for a loaded 2-core machine.
    assert graded.seconds < 300, graded.proc.stderr[-3000:]


def test_a_sound_exercise_keeps_every_point(graded: Graded):
    assert graded.points("01_sound") == {"test_first": 2.0, "test_risky": 3.0, "test_last": 5.0}


@pytest.mark.parametrize("exercise", [
    "02_hang", "03_deadlock", "04_leaked_thread", "05_exit_in_test", "07_sys_exit", "08_segfault",
    "09_fork_bomb", "10_escaping_daemon", "11_memory_bomb", "12_edited_test", "13_forged_status",
    "14_fake_results",
])
def test_a_hostile_test_costs_only_its_own_points(graded: Graded, exercise: str):
    assert graded.points(exercise) == EARNED_7, graded.output(exercise, "test_risky")[:2000]


def test_a_hang_in_the_main_thread_is_a_timeout(graded: Graded):
    assert graded.output("02_hang", "test_risky").startswith("timeout: the test ran longer than 10 s")


def test_os_exit_during_a_test_is_a_crash(graded: Graded):
    assert graded.output("05_exit_in_test", "test_risky").startswith(
        "crashed: the test process exited with status 0 during this test")


def test_os_exit_at_import_costs_the_whole_exercise_and_nothing_else(graded: Graded):
    assert graded.points("06_exit_at_import") == dict.fromkeys(EARNED_7, 0.0)
    # os._exit at import no longer ends the child: the exercise is broken, naming the call.
    assert "called os._exit(0)" in graded.output("06_exit_at_import", "test_first")


def test_a_segfault_is_a_crash_naming_the_signal(graded: Graded):
    assert "SIGSEGV" in graded.output("08_segfault", "test_risky")


def test_a_fork_bomb_is_killed(graded: Graded):
    assert graded.output("09_fork_bomb", "test_risky").startswith("killed:")


def test_a_memory_bomb_is_stopped(graded: Graded):
    output = graded.output("11_memory_bomb", "test_risky")
    # Killed by the supervisor's watch, or stopped by the address-space limit
    # first; on a machine so loaded that the bomb cannot even allocate in time,
    # by the test's time limit.
    assert (output.startswith("killed: it used more than 400 MB") or "MemoryError" in output
            or output.startswith("timeout: the test ran longer")), output[:500]


def test_edited_tests_and_config_are_listed(graded: Graded):
    notes = graded.report["output"]
    assert "exercises/12_edited_test/test_edited_test.py" in notes
    for ignored in ("conftest.py", "pytest.ini", "setup.cfg", "sitecustomize.py", "hostile.pth",
                    "exercises/13_forged_status/conftest.py"):
        assert ignored in notes


def test_conftest_and_sitecustomize_of_the_submission_never_ran(graded: Graded):
    markers = sorted(p.name for p in graded.root.glob("MARKER-*"))
    assert markers == []


def test_a_fake_results_file_is_overwritten_by_the_real_report(graded: Graded):
    assert graded.report["score"] == 10 + 12 * 7
    assert graded.report["score"] != 999


def test_sigterm_still_writes_the_report_and_leaves_nothing_running(tmp_path: Path):
    submission = tmp_path / "submission"
    shutil.copytree(HOSTILE / "submission" / "exercises" / "02_hang", submission / "02_hang")
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "pytest_concurrency", "grade", str(submission), "--kit",
               str(KIT), "--out", str(out), "--exercise", "02_hang", "--test-timeout", "300"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The report exists (all zeros) as soon as the tests are known; then the child hangs.
        deadline = time.monotonic() + 120
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert out.exists(), "no report was written before the signal"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    scores = {t["name"].split("::")[-1]: (t["score"], t["output"]) for t in report["tests"]}
    assert scores["test_risky"][0] == 0 and scores["test_last"][0] == 0
    assert "interrupted" in scores["test_last"][1]
    assert leftovers(str(submission)) == []
