"""``pytest-concurrency grade`` against the real kit, and its command line.

Only exercise 07 is graded here: the kit check (tests/test_kit.py) covers every
exercise, and the other exercises change while they are written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISE = "07_thread_pool"


def grade(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    base.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run([sys.executable, "-m", "pytest_concurrency", "grade", *args],
                          capture_output=True, text=True, timeout=300, env={**base, **(env or {})},
                          cwd=cwd)


@pytest.fixture(scope="module")
def solutions_graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("solutions")
    summary = out / "step-summary.md"
    summary.write_text("earlier steps\n", encoding="utf-8")
    paths = {fmt: out / f"report.{fmt}" for fmt in ("gradescope", "exercism", "classroom50",
                                                     "junit", "markdown")}
    also = [f"--also={fmt}:{path}" for fmt, path in paths.items() if fmt != "gradescope"]
    proc = grade(str(ROOT / "solutions"), "--exercise", EXERCISE, "--out",
                 str(paths["gradescope"]), *also, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**paths, "summary": summary}


def test_solutions_score_full_marks_in_every_format(solutions_graded):
    gradescope = json.loads(solutions_graded["gradescope"].read_text())
    assert gradescope["tests"] and gradescope["score"] == gradescope["max_score"]
    assert all(t["name"].startswith(f"{EXERCISE}/test_thread_pool.py::") for t in gradescope["tests"])
    exercism = json.loads(solutions_graded["exercism"].read_text())
    assert exercism["status"] == "pass" and len(exercism["tests"]) == len(gradescope["tests"])
    classroom = json.loads(solutions_graded["classroom50"].read_text())
    assert classroom["score"] == classroom["max-score"] == gradescope["max_score"]
    junit = ET.parse(solutions_graded["junit"]).getroot()
    assert junit.get("failures") == "0" and junit.get("errors") == "0"
    assert f"| {EXERCISE} |" in solutions_graded["markdown"].read_text()


def test_markdown_is_appended_to_the_github_step_summary(solutions_graded):
    text = solutions_graded["summary"].read_text()
    assert text.startswith("earlier steps\n") and f"| {EXERCISE} |" in text


def test_the_stubs_score_zero_with_every_test_not_started(tmp_path):
    out = tmp_path / "results.json"
    proc = grade(str(ROOT / "exercises"), "--exercise", EXERCISE, "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["tests"] and report["score"] == 0
    assert all(t["output"].startswith("not started") for t in report["tests"])


def test_a_copy_of_only_the_exercise_folder_is_a_submission(tmp_path):
    (tmp_path / "sub" / EXERCISE).mkdir(parents=True)
    source = ROOT / "solutions" / EXERCISE / "thread_pool.py"
    (tmp_path / "sub" / EXERCISE / "thread_pool.py").write_text(source.read_text())
    proc = grade(str(tmp_path / "sub"), "--exercise", EXERCISE, "--format", "markdown", "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "✅ passed" in proc.stdout


def test_a_missing_module_scores_zero_and_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = grade(str(tmp_path / "empty"), "--exercise", EXERCISE, "--format", "exercism", "-q")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["status"] == "error"
    assert all("does not exist" in t["message"] for t in report["tests"])


@pytest.mark.parametrize(("args", "message"), [
    (["/no/such/submission"], "/no/such/submission: no such folder to grade"),
    (["{tmp}", "--kit", "/no/such/kit"], "cannot find the kit's tests: /no/such/kit"),
    (["{tmp}", "--exercise", "99_nothing"], "no such exercise in the kit: 99_nothing"),
])
def test_grading_that_cannot_run_exits_3_with_a_clear_message(tmp_path, args, message):
    proc = grade(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 3
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}", "--also", "junit"], "--also junit: expected FORMAT:PATH"),
    (["{tmp}", "--format", "tap"], "invalid choice: 'tap'"),
    (["{tmp}", "--out", "/no/such/folder/r.json"], "folder /no/such/folder does not exist"),
])
def test_a_bad_command_line_exits_2_with_a_clear_message(tmp_path, args, message):
    proc = grade(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2
    assert message in proc.stderr


def _docs_block(after: str) -> str:
    """The first code block after the line ``after`` in docs/grading.md."""
    text = (ROOT / "docs" / "grading.md").read_text(encoding="utf-8")
    rest = text[text.index(after):]
    start = rest.index("```bash\n") + len("```bash\n")
    return rest[start:rest.index("```", start)]


@pytest.mark.parametrize(("tree", "full_marks"), [("solutions", True), ("exercises", False)])
def test_the_gradescope_run_autograder_of_the_docs(tmp_path, tree, full_marks):
    script = tmp_path / "run_autograder"
    script.write_text(_docs_block("`run_autograder`:"), encoding="utf-8")
    script.chmod(0o755)
    submission = tmp_path / "submission" / EXERCISE
    submission.mkdir(parents=True)
    (submission / "thread_pool.py").write_text((ROOT / tree / EXERCISE / "thread_pool.py").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(AUTOGRADER_ROOT=str(tmp_path), KIT=str(ROOT),
               PYTEST_CONCURRENCY=str(Path(sys.executable).with_name("pytest-concurrency")))
    proc = subprocess.run(["bash", str(script), "--exercise", EXERCISE], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "results" / "results.json").read_text())
    ours = [t for t in report["tests"] if t["name"].startswith(EXERCISE + "/")]
    assert ours and all((t["score"] == t["max_score"]) == full_marks for t in ours)
