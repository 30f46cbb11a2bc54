"""The student's path, made hostile: `pytest exercises/ --impl DIR` always ends, with a score table.

Each case adds one mistake a student makes (a loop at import, a thread started
at import, an ``atexit`` handler that blocks, a loop in a method...) to the kit's solution of one
exercise, and runs that exercise with another, untouched one, as a student
runs the kit: ``python -m pytest exercises/A exercises/B --impl DIR``, in a
session of its own.  Every case checks that the run ends well within a minute,
the score table is printed, the spoiled exercise scores what it earned and no
more, the other one keeps full marks, and nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from kit import ROOT, SOLUTIONS, module_of

pytestmark = pytest.mark.timeout(120)

# (the exercise spoiled, the one run beside it untouched)
PAIRS = [("01_thread_basics", "07_thread_pool"), ("07_thread_pool", "01_thread_basics")]
RUN_LIMIT = 60.0

LOOP = "while True:\n    pass\n"
SLEEP = "import time\ntime.sleep(10**6)\n"
THREAD = (
    "import threading, time\n"
    "def _serve():\n"
    "    while True:\n"
    "        time.sleep(0.05)\n"
    "threading.Thread(target=_serve, name='serve').start()\n"
)
STUCK_THREAD = (
    "import threading\n"
    "_held = threading.Lock()\n"
    "_held.acquire()\n"
    "threading.Thread(target=_held.acquire, name='stuck').start()\n"
)
PROCESS = (
    "import multiprocessing, time\n"
    "multiprocessing.Process(target=time.sleep, args=(1000,), name='napper').start()\n"
)
SUBPROCESS = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)'])\n"
ATEXIT = "import atexit, time\natexit.register(time.sleep, 10**6)\n"
OS_EXIT = "import os\nos._exit(0)\n"
# exercise -> (the solution's line the loop goes before, the function it is in, its first line)
LOOP_IN_A_METHOD = {
    "01_thread_basics": ("    _check_interval(interval)\n    if stop is None:\n",
                         "start_clock", "while interval:  # the student's loop"),
    "07_thread_pool": ("        future: Future = Future()\n", "submit", "while self._workers:  # the student's loop"),
}


@dataclass
class Run:
    exercise: str
    other: str
    module_file: Path
    stdout: str
    stderr: str
    status: int
    seconds: float
    grade: dict

    def score(self, exercise: str) -> tuple[float, float]:
        tests = [t for t in self.grade["tests"] if t["name"].startswith(exercise + "/")]
        return sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)

    def failed(self, exercise: str) -> list[dict]:
        return [t for t in self.grade["tests"]
                if t["name"].startswith(exercise + "/") and t["score"] < t["max_score"]]

    @property
    def line_of_mistake(self) -> int:
        """The number of the last line of the module: the mistake ends it."""
        return len(self.module_file.read_text(encoding="utf-8").splitlines())


def _leftovers(group: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (OSError, psutil.Error):
            continue
    return found


def run_spoiled(tmp_path: Path, exercise: str, other: str, mistake: str, *extra: str,
                 before: str = "") -> Run:
    """Run ``exercise`` (its solution plus ``mistake`` at the end, or before the line ``before``)
    and ``other`` (its solution)."""
    impl = tmp_path / "impl"
    for name in (exercise, other):
        (impl / name).mkdir(parents=True)
        shutil.copy(SOLUTIONS / name / f"{module_of(name)}.py", impl / name)
    module_file = impl / exercise / f"{module_of(exercise)}.py"
    source = module_file.read_text(encoding="utf-8")
    if before:
        assert source.count(before) == 1, f"{module_file.name} changed: the mistake no longer applies"
        source = source.replace(before, mistake + before)
    else:
        source += "\n" + mistake
    module_file.write_text(source, encoding="utf-8")
    out = tmp_path / "grade.json"
    command = [
        sys.executable, "-m", "pytest", f"exercises/{exercise}", f"exercises/{other}", "-q",
        "-p", "no:cacheprovider", "--impl", str(impl), "--grade-json", str(out), *extra,
    ]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    began = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_LIMIT)
        seconds = time.monotonic() - began
        time.sleep(0.5)  # what the run killed at its end has a moment to go
        left = _leftovers(process.pid)
    finally:
        with_children = _leftovers(process.pid)
        for p in with_children:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert not left, f"left running after the run: {[p.pid for p in left]}\n{stdout[-3000:]}"
    assert out.exists(), f"no grade written\n{stdout[-3000:]}\n{stderr[-3000:]}"
    run = Run(exercise, other, module_file, stdout, stderr, process.returncode, seconds,
              json.loads(out.read_text(encoding="utf-8")))
    assert run.seconds < RUN_LIMIT
    assert "pytest-concurrency: score" in stdout, stdout[-3000:] + stderr[-3000:]
    assert run.score(other)[0] == run.score(other)[1] > 0, f"{other} lost marks:\n{stdout[-3000:]}"
    assert run.status in (0, 1), f"exit status {run.status}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    return run


def assert_broken(run: Run, *words: str) -> None:
    score, most = run.score(run.exercise)
    assert score == 0 < most
    assert run.status == 1
    line = next(t["output"] for t in run.failed(run.exercise))
    assert line.count("\n") == 0, line
    for word in words:
        assert word in line, line
    assert f"{run.exercise}: {line}" in run.stdout  # under the score table


def assert_first_test_fails_for(run: Run, *words: str) -> None:
    """An import-time leak: exactly one test pays (the first), and its report says what and where."""
    score, most = run.score(run.exercise)
    failed = run.failed(run.exercise)
    assert len(failed) == 1, [t["name"] for t in failed]
    assert score == most - failed[0]["max_score"]
    report = failed[0]["output"]
    where = f"{run.module_file.name}:{run.line_of_mistake}"
    for word in (f"importing {run.module_file.name} started", where, "__main__", *words):
        assert word in report, report


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
def test_a_loop_at_import_breaks_its_exercise_after_the_default_limit(tmp_path, exercise, other):
    run = run_spoiled(tmp_path, exercise, other, LOOP)
    module = f"{module_of(exercise)}.py"
    assert_broken(run, f"importing {module} did not finish in 10 s; it was running line")
    lines = run.line_of_mistake
    assert f"line {lines - 1}: `while True:`" in run.stdout or f"line {lines}: `pass`" in run.stdout


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
def test_a_sleep_at_import_breaks_its_exercise(tmp_path, exercise, other):
    run = run_spoiled(tmp_path, exercise, other, SLEEP, "--import-timeout", "2")
    assert_broken(run, "did not finish in 2 s", f"line {run.line_of_mistake}: `time.sleep(10**6)`")


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
def test_os_exit_at_import_breaks_its_exercise_and_the_run_goes_on(tmp_path, exercise, other):
    run = run_spoiled(tmp_path, exercise, other, OS_EXIT)
    assert_broken(run, "called os._exit(0)", f"line {run.line_of_mistake}: `os._exit(0)`")


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
def test_a_thread_started_at_import_fails_the_first_test(tmp_path, exercise, other):
    run = run_spoiled(tmp_path, exercise, other, THREAD)
    assert_first_test_fails_for(run, "thread 'serve' (non-daemon)")


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
def test_a_thread_stuck_for_good_at_import_does_not_keep_pytest_alive(tmp_path, exercise, other):
    run = run_spoiled(tmp_path, exercise, other, STUCK_THREAD)
    assert_first_test_fails_for(run, "thread 'stuck' (non-daemon)", "left for the end of the session")
    assert "left running at the end" in run.stdout
    assert "exiting without waiting" in run.stderr
    assert run.status == 1


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
@pytest.mark.parametrize("mistake", [PROCESS, SUBPROCESS], ids=["multiprocessing", "subprocess"])
def test_a_process_started_at_import_fails_the_first_test(tmp_path, exercise, other, mistake):
    run = run_spoiled(tmp_path, exercise, other, mistake)
    assert_first_test_fails_for(run, "process pid", "They were stopped.")


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
def test_an_atexit_handler_that_blocks_does_not_keep_pytest_alive(tmp_path, exercise, other):
    run = run_spoiled(tmp_path, exercise, other, ATEXIT)
    assert run.score(exercise)[0] == run.score(exercise)[1]  # registering one is no mistake in itself
    assert run.status == 0
    assert "atexit handler sleep" in run.stdout  # the summary names it
    assert "did not return in 2 s: exiting without waiting" in run.stderr


@pytest.mark.parametrize(("exercise", "other"), PAIRS)
def test_an_infinite_loop_in_a_method_costs_the_exercise_its_budget_not_more(tmp_path, exercise, other):
    """The default limits: 27 s for the first test that hangs, and the exercise reports within
    its 30 s budget: without it, 27 s and then 2 s for each of its other tests that hang."""
    before, function, loop = LOOP_IN_A_METHOD[exercise]
    indent = before[: len(before) - len(before.lstrip())]
    run = run_spoiled(tmp_path, exercise, other, f"{indent}{loop}\n{indent}    pass\n", before=before)
    module = run.module_file.name
    where = re.escape(f"{module}:") + "[0-9]+" + re.escape(f" in {function}: `{loop}`")
    failed = {t["name"].split("::")[-1]: t["output"] for t in run.failed(exercise)}
    hung = [name for name, output in failed.items()
            if re.match(f"{re.escape(name)} did not finish in 27 s; your code was running {where}", output)]
    assert len(hung) == 1, failed
    for name, output in failed.items():
        if name != hung[0]:
            assert re.match(f"{re.escape(name)} did not finish in [0-9.]+ s \\(given .* because "
                            f"{re.escape(hung[0])} hung before\\); your code was running {where}", output
                            ) or re.fullmatch(
                f"not run: {exercise} used its 30 s budget \\(--exercise-budget\\) after "
                f"{re.escape(hung[0])} hung; your code was running {where}", output), output
    assert any(o.startswith("not run:") for o in failed.values()), failed
    score, most = run.score(exercise)
    assert score == most - sum(t["max_score"] for t in run.failed(exercise))
