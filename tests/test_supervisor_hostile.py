"""The hostile suite: ``pytest-concurrency grade`` against submissions that fight back.

One grade run of ``tests/hostile/submission`` (a copy, in a temporary folder)
against the fake kit ``tests/hostile/kit`` is shared by the per-case tests:
every exercise must get exactly the points it earned (7/10 when only the
risky test fails, 0 when the module kills its process while it is imported,
10/10 for the sound one), within a bounded time, with nothing left running.
A submission that kills every process it can signal is graded apart, and
only once a probe showed that the test processes are confined to a PID
namespace of their own (``tests/hostile/confined``).
See ``tests/hostile/README.md``.
"""

from __future__ import annotations

import json
import os
import re
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


# What the issue asks of a hang at import or in __init__ (measured 15-20 s).
HANG_BUDGET = 30


def run_grade(submission: Path, out: Path, *extra: str, kit: Path = KIT, timeout: float = 400,
              env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_concurrency", "grade", str(submission),
               "--kit", str(kit), "--out", str(out), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.update(env_extra or {})
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

    def status(self, exercise: str) -> str:
        """The exercise's status in the score table on standard error."""
        found = re.search(rf"^{exercise}\s+\S+\s+\S+\s+(.+?)\s*$", self.proc.stderr, re.M)
        assert found, self.proc.stderr[-3000:]
        return found.group(1)

    def took(self, exercise: str) -> float:
        """Seconds the exercise took, from its progress line on standard error."""
        found = re.search(rf"^{exercise}: .* in ([0-9.]+) s", self.proc.stderr, re.M)
        assert found, self.proc.stderr[-3000:]
        return float(found.group(1))


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
    assert graded.report["max_score"] == 189


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
    "14_fake_results", "16_kill_group",
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
    assert graded.report["score"] == 10 + 13 * 7 + 7  # 18_hang_in_init earns 7 of 19
    assert graded.report["score"] != 999


def test_a_module_that_kills_its_parent_costs_its_exercise_not_the_grader(graded: Graded):
    # The grader itself survived (the grade exists, exit status 0, every other
    # exercise graded): the test process's parent is the launcher's relay.
    assert graded.proc.returncode == 0, graded.proc.stderr[-3000:]
    assert graded.points("15_kill_parent") == dict.fromkeys(EARNED_7, 0.0)
    assert graded.status("15_kill_parent") == "crashed"
    assert "the test process's parent was killed by SIGKILL" in graded.output(
        "15_kill_parent", "test_first")


def test_killing_its_own_process_group_costs_only_the_test(graded: Graded):
    assert graded.status("16_kill_group") == "crashed"
    assert graded.output("16_kill_group", "test_risky").startswith(
        "crashed: the test process was killed by SIGKILL")


def test_a_hang_at_import_costs_seconds_not_the_wall_limit(graded: Graded, record_property):
    took = graded.took("17_hang_at_import")
    record_property("seconds", took)
    assert graded.points("17_hang_at_import") == dict.fromkeys(EARNED_7, 0.0)
    assert graded.status("17_hang_at_import") == "timeout"
    assert "collecting the tests did not finish in 15 s" in graded.output(
        "17_hang_at_import", "test_first")
    assert took < HANG_BUDGET, graded.proc.stderr[-3000:]


def test_a_hang_in_init_costs_seconds_once_a_test_timed_out(graded: Graded, record_property):
    took = graded.took("18_hang_in_init")
    record_property("seconds", took)
    assert graded.points("18_hang_in_init") == {
        "test_first": 2.0, "test_risky": 0.0, "test_risky_2": 0.0, "test_risky_3": 0.0,
        "test_risky_4": 0.0, "test_last": 5.0,
    }
    assert graded.status("18_hang_in_init") == "timeout"
    assert graded.output("18_hang_in_init", "test_risky").startswith(
        "timeout: the test ran longer than 10 s")
    for later in ("test_risky_2", "test_risky_3", "test_risky_4"):  # the short limit, in pytest
        output = graded.output("18_hang_in_init", later)
        assert output.startswith(
            f"{later} did not finish in 2 s; your code was running hang_in_init.py:6 in __init__"
        ), output[:500]
    assert took < HANG_BUDGET, graded.proc.stderr[-3000:]


CONFINED = HOSTILE / "confined"


def _launcher_confines() -> bool:
    """Does the launcher get a PID namespace here (root on Linux)?  Harmless: it runs `true`."""
    from pytest_concurrency.grading import launcher

    read_end, write_end = os.pipe()
    try:
        subprocess.run([sys.executable, "-I", "-S", "-B", launcher.__file__, str(write_end),
                        "isolate", "--", shutil.which("true") or "/bin/true"],
                       pass_fds=(write_end,), timeout=60, check=False)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        said = [json.loads(line) for line in stream.read().splitlines()]
    return {"confined": True} in said


def test_killing_every_process_it_can_signal_reaches_only_its_own_namespace(tmp_path: Path):
    """``os.kill(-1, SIGKILL)`` from a graded module: only once proven harmless.

    As root outside a PID namespace, kill(-1) kills every process on the
    machine.  So: skip where the launcher gets no namespace; else a probe
    exercise, graded first, must show that the test process cannot see or
    signal this test, the grader or a witness process; only then is the
    module that calls kill(-1) graded (and it checks again before killing).
    """
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or not _launcher_confines():
        pytest.skip("no PID namespace for the test processes here (needs root on Linux): "
                    "kill(-1) would reach the grader")
    submission = tmp_path / "submission"
    shutil.copytree(CONFINED / "submission", submission)
    marker = f"hostile-witness-{os.getpid()}-{time.time_ns()}"
    witness = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
    env = {"HOSTILE_HOST_PID_NS": os.readlink("/proc/self/ns/pid"),
           "HOSTILE_WITNESS_PIDS": f"{os.getpid()},{witness.pid}",
           "HOSTILE_WITNESS_MARKER": marker}
    try:
        probe = run_grade(submission, tmp_path / "probe.json", "--exercise", "02_probe", *LIMITS,
                          kit=CONFINED / "kit", env_extra=env)
        assert probe.returncode == 0, probe.stderr[-3000:]
        probed = json.loads((tmp_path / "probe.json").read_text(encoding="utf-8"))
        # Not confined: fail, and never grade the module that kills.
        assert probed["score"] == 10, [t["output"][:1000] for t in probed["tests"]]

        (tmp_path / "out").mkdir()
        started = time.monotonic()
        proc = run_grade(submission, tmp_path / "out" / "results.json", "--jobs", "2", *LIMITS,
                         kit=CONFINED / "kit", env_extra=env)
        graded = Graded(tmp_path, proc, time.monotonic() - started)
        assert witness.poll() is None, "the witness process was killed"
    finally:
        witness.kill()
        witness.wait()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert graded.points("01_sound") == {"test_first": 2.0, "test_risky": 3.0, "test_last": 5.0}
    assert graded.points("02_probe") == {"test_first": 2.0, "test_risky": 3.0, "test_last": 5.0}
    assert graded.points("03_kill_everything") == EARNED_7
    assert graded.status("03_kill_everything") == "crashed"
    assert "parent was killed by SIGKILL" in graded.output("03_kill_everything", "test_risky")
    assert graded.left_running == []


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


def test_once_the_budget_is_spent_the_tests_left_are_not_run(tmp_path: Path):
    """A hang the supervisor itself stopped (3 s) after the exercise's 2 s budget: no resumed
    child, and the tests left say why; without the budget, four more tests would run."""
    submission = tmp_path / "submission"
    shutil.copytree(HOSTILE / "submission" / "exercises" / "18_hang_in_init", submission / "18_hang_in_init")
    out = tmp_path / "results.json"
    proc = run_grade(submission, out, "--exercise", "18_hang_in_init", "--test-timeout", "3",
                     "--exercise-budget", "2", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tests = {t["name"].split("::")[-1]: t for t in json.loads(out.read_text(encoding="utf-8"))["tests"]}
    assert tests["test_first"]["score"] == 2
    assert tests["test_risky"]["output"].startswith("timeout: the test ran longer than 3 s")
    for name in ("test_risky_2", "test_risky_3", "test_risky_4", "test_last"):
        assert tests[name]["score"] == 0
        assert tests[name]["output"] == ("not run: timeout: the exercise used its 2 s budget "
                                         "(counted from its first test) after a test timed out")
    assert leftovers(str(submission)) == []
