"""``pytest-concurrency grade-all``: three submissions (right, stubs, one that hangs) on a small
kit, graded by the supervisor of ``grade`` two at a time; the gradebook CSV and each report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_student_cli import MUL_STUB, MUL_TESTS, README, RIGHT, STUB, TESTS

HANG = "def mul(a, b):\n    while True:\n        pass\n"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def classroom(tmp_path: Path) -> tuple[Path, Path]:
    kit = tmp_path / "kit"
    write(kit, {
        "pytest.ini": "[pytest]\naddopts = --import-mode=importlib -p no:cacheprovider\n"
                      "testpaths = exercises\ntamper_check = off\n",
        "exercises/01_add/adder.py": STUB, "exercises/01_add/test_adder.py": TESTS,
        "exercises/01_add/README.md": README,
        "exercises/02_mul/mul.py": MUL_STUB, "exercises/02_mul/test_mul.py": MUL_TESTS,
    })
    subs = tmp_path / "submissions"
    write(subs, {
        "alice/exercises/01_add/adder.py": RIGHT,
        "alice/exercises/02_mul/mul.py": "def mul(a, b):\n    return a * b\n",
        "bob/exercises/01_add/adder.py": STUB,
        "bob/exercises/02_mul/mul.py": MUL_STUB,
        "carol/01_add/adder.py": RIGHT,  # just the exercises/ folder
        "carol/02_mul/mul.py": HANG,
        ".hidden/01_add/adder.py": RIGHT,
    })
    (subs / "notes.txt").write_text("not a submission")
    return kit, subs


def test_grade_all_writes_one_row_per_submission_and_a_report_each(classroom, tmp_path):
    kit, subs = classroom
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_concurrency", "grade-all", str(subs), "--jobs", "2",
         "--csv", str(out / "gradebook.csv"), "--kit", str(kit),
         "--test-timeout", "4", "--exercise-budget", "6", "--timeout", "60"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows == [
        ["Student", "01_add", "02_mul", "total"],
        ["alice", "3", "1", "4"],
        ["bob", "0", "0", "0"],
        ["carol", "3", "0", "3"],  # the hang costs its own test only
    ]
    raw = (out / "gradebook.csv").read_bytes()
    assert raw.startswith(b"Student,") and b"\r\n" in raw  # RFC 4180, no BOM
    reports = sorted(p.name for p in (out / "reports").iterdir())
    assert reports == ["alice.json", "bob.json", "carol.json"]
    carol = json.loads((out / "reports/carol.json").read_text())
    assert carol["score"] == 3 and carol["max_score"] == 4
    assert "alice: 4 points" in proc.stderr


def test_grade_all_names_bad_input(classroom, tmp_path):
    kit, subs = classroom
    env = {**os.environ}
    run = lambda *a: subprocess.run([sys.executable, "-m", "pytest_concurrency", "grade-all", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    missing = run(str(tmp_path / "nowhere"), "--kit", str(kit))
    assert missing.returncode == 2 and "no such folder of submissions" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no submission folders" in run(str(empty), "--kit", str(kit)).stderr
    no_kit = run(str(subs), "--kit", str(tmp_path))
    assert no_kit.returncode == 3 and "cannot find the kit's tests" in no_kit.stderr
