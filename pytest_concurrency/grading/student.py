"""The student's commands: ``list``, ``next``, ``hint``, ``reset`` (``watch`` is in ``watch.py``).

They work on the kit in the current folder (or ``--kit DIR``): the folder that
holds ``exercises/NN_name/``.  They read and write only the exercise being
reset and the kit's progress folder, ``.pytest-concurrency/`` (ignored by
git); they never touch ``solutions/``.

An exercise is run the way a student runs it, ``pytest exercises/NN_name`` in
the kit, in a child process; the grading part writes the grade book as JSON
for it (``PROGRESS_ENV``), so a test's outcome, message and hint are the ones
the score table shows.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..layout import EXERCISE_FOLDER, hints
from .formats import points_text, write_atomically
from .model import PASSED, ExerciseGrade, TestResult
from .plugin import PROGRESS_ENV

STATE_DIR = ".pytest-concurrency"  # in the kit, ignored by git
BAR_WIDTH = 20


class StudentError(Exception):
    """A command cannot do what was asked (not a kit, no such exercise, no stub in git)."""


# --- the kit and its exercises ------------------------------------------------


@dataclass(frozen=True)
class StudentKit:
    """A student's copy of the kit: the folder that holds ``exercises/NN_name/``."""

    root: Path

    @classmethod
    def find(cls, explicit: str | os.PathLike[str] | None = None) -> StudentKit:
        """``--kit DIR``, else the current folder or the nearest folder above it that is a kit."""
        if explicit is not None:
            root = Path(explicit).expanduser().resolve()
            if not root.is_dir():
                raise StudentError(f"--kit {explicit}: no such folder")
            kit = cls(root)
            if not kit.exercise_names():
                raise StudentError(
                    f"--kit {explicit}: not a kit folder: {root} has no exercises/NN_name/ folders"
                )
            return kit
        here = Path.cwd().resolve()
        for folder in (here, *here.parents):
            kit = cls(folder)
            if kit.exercise_names():
                return kit
        raise StudentError(
            f"not a kit folder: neither {here} nor a folder above it has exercises/NN_name/ "
            "folders; run this in the kit, or pass --kit DIR"
        )

    @property
    def exercises(self) -> Path:
        return self.root / "exercises"

    def exercise_names(self) -> list[str]:
        if not self.exercises.is_dir():
            return []
        return sorted(p.name for p in self.exercises.iterdir()
                      if p.is_dir() and EXERCISE_FOLDER.match(p.name))

    def resolve(self, name: str) -> str:
        """An exercise by its folder name (``06_locks``), number (``06``, ``6``) or name (``locks``)."""
        names = self.exercise_names()
        wanted = name.strip().rstrip("/").rsplit("/", 1)[-1]
        for exercise in names:
            number, _, short = exercise.partition("_")
            if wanted in (exercise, short) or (wanted.isdigit() and int(wanted) == int(number)):
                return exercise
        listed = ", ".join(names)
        raise StudentError(f"unknown exercise {name!r}: expected one of {listed} (or its number, e.g. 6)")

    def module(self, exercise: str) -> Path:
        """The file the student edits: the exercise's one ``.py`` that is not a test."""
        folder = self.exercises / exercise
        modules = sorted(p for p in folder.glob("*.py")
                         if not p.name.startswith(("test_", "conftest")))
        if len(modules) != 1:
            found = ", ".join(p.name for p in modules) or "none"
            raise StudentError(f"{exercise}: expected one module beside its tests, found {found}")
        return modules[0]

    def readme(self, exercise: str) -> Path:
        return self.exercises / exercise / "README.md"

    def relative(self, path: Path) -> str:
        """``path`` as the student types it: relative to the current folder when inside it."""
        try:
            return path.relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return str(path)


# --- progress ------------------------------------------------------------------


@dataclass
class Record:
    """The last run of one exercise, as ``list`` shows it."""

    status: str
    passed: int
    tests: int
    score: float
    max_score: float


@dataclass
class Progress:
    """``.pytest-concurrency/progress.json``: the last run of each exercise, the hints seen."""

    path: Path
    records: dict[str, Record] = field(default_factory=dict)
    hints_seen: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, kit: StudentKit) -> Progress:
        path = kit.root / STATE_DIR / "progress.json"
        progress = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            progress.records = {name: Record(**fields) for name, fields in data.get("exercises", {}).items()}
            progress.hints_seen = {str(k): int(v) for k, v in data.get("hints_seen", {}).items()}
        except (OSError, ValueError, TypeError):
            pass  # no progress yet, or a file we cannot read: start afresh
        return progress

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.path.parent / ".gitignore"
        if not ignore.exists():  # ignored by git even in a kit whose .gitignore lacks it
            ignore.write_text("*\n", encoding="utf-8")
        data = {"exercises": {name: vars(r) for name, r in sorted(self.records.items())},
                "hints_seen": dict(sorted(self.hints_seen.items()))}
        write_atomically(self.path, json.dumps(data, indent=1) + "\n")

    def record(self, grade: ExerciseGrade) -> None:
        self.records[grade.name] = Record(grade.status, grade.passed, len(grade.tests),
                                          grade.score, grade.max_score)

    def status(self, exercise: str) -> str:
        record = self.records.get(exercise)
        return record.status if record else "not run yet"

    def current(self, kit: StudentKit) -> str:
        """The exercise to work on now: the first one not passed."""
        names = kit.exercise_names()
        return next((n for n in names if self.status(n) != PASSED), names[-1])


# --- running an exercise -------------------------------------------------------


@dataclass
class Run:
    """One ``pytest exercises/NN_name`` in the kit, and what it found."""

    exercise: str
    grade: ExerciseGrade | None  # None: pytest wrote no grade (see output)
    output: str
    exit_code: int


def exercise_command(exercise: str) -> list[str]:
    """The command line of a student's run of one exercise."""
    return [sys.executable, "-m", "pytest", f"exercises/{exercise}", "-q", "-p", "no:cacheprovider",
            "--color=no"]


def start_run(kit: StudentKit, exercise: str, out: Path) -> subprocess.Popen[str]:
    """Start ``pytest exercises/NN_name`` in the kit, in its own session (so it can be stopped
    as a whole); it writes its grade book to ``out``."""
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    env = {**os.environ, PROGRESS_ENV: str(out), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(exercise_command(exercise), cwd=kit.root, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def finish_run(kit: StudentKit, exercise: str, out: Path, output: str, exit_code: int) -> Run:
    """Read what a finished run wrote, and remember it in the progress file."""
    try:
        data = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Run(exercise, None, output, exit_code)
    tests = []
    for test in data["tests"]:
        result = TestResult(test["name"], test["exercise"], float(test["points"]),
                            kit.readme(test["exercise"]), outcome=test["outcome"],
                            message=test["message"], hint=test["hint"])
        tests.append(result)
    grade = ExerciseGrade(exercise, [t for t in tests if t.exercise == exercise])
    if not grade.tests:
        return Run(exercise, None, output, exit_code)
    progress = Progress.load(kit)
    progress.record(grade)
    progress.save()
    return Run(exercise, grade, output, exit_code)


def run_exercise(kit: StudentKit, exercise: str) -> Run:
    with tempfile.TemporaryDirectory(prefix="pytest-concurrency-") as tmp:
        out = Path(tmp, "grade.json")
        proc = start_run(kit, exercise, out)
        output, _ = proc.communicate()
        return finish_run(kit, exercise, out, output, proc.returncode)


# --- what the commands print ----------------------------------------------------


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """``[#####---------------]``: plain ASCII, for any terminal.

    >>> bar(0.5, 10)
    '[#####-----]'
    """
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def kit_progress_line(kit: StudentKit, progress: Progress) -> str:
    names = kit.exercise_names()
    passed = sum(progress.status(n) == PASSED for n in names)
    return f"kit {bar(passed / len(names))} {passed}/{len(names)} exercises passed"


def list_lines(kit: StudentKit, progress: Progress) -> list[str]:
    names = kit.exercise_names()
    width = max(len(n) for n in names)
    lines = [kit_progress_line(kit, progress), ""]
    for name in names:
        record = progress.records.get(name)
        if record is None:
            lines.append(f"{name.ljust(width)}  {'':>7}  {bar(0, 10)}  not run yet")
            continue
        points = f"{points_text(record.score)}/{points_text(record.max_score)}"
        fraction = record.score / record.max_score if record.max_score else 0.0
        lines.append(f"{name.ljust(width)}  {points:>7}  {bar(fraction, 10)}  {record.status}")
    lines.append("")
    lines.append(f"next: {progress.current(kit)}  (statuses are from your last run of each exercise)")
    return lines


def next_lines(kit: StudentKit, progress: Progress) -> list[str]:
    exercise = progress.current(kit)
    record = progress.records.get(exercise)
    how = (f"{record.status}, {points_text(record.score)}/{points_text(record.max_score)} points"
           if record else "not run yet")
    if all(progress.status(n) == PASSED for n in kit.exercise_names()):
        return ["Every exercise passes. Well done!"]
    return [
        f"next: {exercise} ({how})",
        f"  read  {kit.relative(kit.readme(exercise))}",
        f"  edit  {kit.relative(kit.module(exercise))}",
        f"  run   pytest-concurrency watch {exercise}",
    ]


def next_hint(kit: StudentKit, exercise: str, progress: Progress) -> list[str]:
    """The next hint of ``exercise`` the student has not seen, and remember it as seen."""
    found = hints(kit.readme(exercise))
    if not found:
        return [f"{exercise} has no hints in {kit.relative(kit.readme(exercise))}."]
    numbers = sorted(found)
    seen = progress.hints_seen.get(exercise, 0)
    number = next((n for n in numbers if n > seen), numbers[-1])
    progress.hints_seen[exercise] = number
    progress.save()
    last = number == numbers[-1]
    after = ("that was the last hint." if last
             else f"`pytest-concurrency hint {exercise}` again for hint {number + 1}.")
    return [f"{exercise}, hint {number} of {numbers[-1]}:", "", found[number], "", after]


# --- reset -------------------------------------------------------------------------


def is_stub(source: str) -> bool:
    """Whether ``source`` is an exercise stub: every function (but dunders other than
    ``__init__``, which may call the others) only raises NotImplementedError.

    >>> is_stub("def f():\\n    '''Doc.'''\\n    raise NotImplementedError('f: write it')\\n")
    True
    >>> is_stub("def f():\\n    return 1\\n")
    False
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and (n.name == "__init__" or not (n.name.startswith("__") and n.name.endswith("__")))]
    if not functions:
        return False
    for function in functions:
        body = function.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
            return False
        raised = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
        if not (isinstance(raised, ast.Name) and raised.id == "NotImplementedError"):
            return False
    return True


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StudentError(f"git {' '.join(args)}: {proc.stderr.strip() or 'failed'}")
    return proc.stdout


def stub_from_git(kit: StudentKit, module: Path) -> tuple[str, str]:
    """(the stub's text, the commit it comes from): the newest committed version of ``module``
    that is still a stub, so that a student who committed their work still gets the stub back."""
    if shutil.which("git") is None:
        raise StudentError("reset takes the stub from git, and git is not installed")
    try:
        top = Path(_git(kit.root, "rev-parse", "--show-toplevel").strip())
    except StudentError:
        raise StudentError(f"reset takes the stub from git, and {kit.root} is not a git "
                           "repository (a clone of the kit)") from None
    relative = module.resolve().relative_to(top.resolve()).as_posix()
    for commit in _git(top, "log", "--format=%H", "--", relative).split():
        text = _git(top, "show", f"{commit}:{relative}")
        if is_stub(text):
            return text, commit
    raise StudentError(f"no commit of {relative} is the stub (every function raising "
                       "NotImplementedError); nothing to restore it from")


def reset(kit: StudentKit, exercise: str) -> list[str]:
    """Put the stub back; keep the student's file in ``.pytest-concurrency/backups/``."""
    module = kit.module(exercise)
    stub, commit = stub_from_git(kit, module)
    current = module.read_text(encoding="utf-8") if module.exists() else None
    if current == stub:
        return [f"{kit.relative(module)} is already the stub: nothing to reset."]
    lines = []
    if current is not None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = kit.root / STATE_DIR / "backups" / exercise / f"{module.name}.{stamp}"
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(module, backup)
        lines.append(f"your {module.name} is kept in {kit.relative(backup)}")
    module.write_text(stub, encoding="utf-8")
    progress = Progress.load(kit)
    progress.records.pop(exercise, None)
    progress.hints_seen.pop(exercise, None)
    progress.save()
    lines.insert(0, f"{kit.relative(module)} is the stub again (as in git commit {commit[:10]}).")
    return lines
