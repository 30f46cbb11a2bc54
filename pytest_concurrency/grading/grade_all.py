"""``pytest-concurrency grade-all DIR``: every folder of DIR is a submission; one gradebook.

Each submission is graded by ``pytest-concurrency grade`` (the same supervisor,
in a process of its own), N submissions at a time, and writes its own report
(``--reports DIR``, one file per submission).  The gradebook CSV has one row per
submission: the folder's name, then the points of each exercise of the kit, then
the total; comma-separated, UTF-8, a header row, numbers with a decimal point,
which Canvas (Grades -> Import) and Moodle (Import -> CSV file) both read.

A submission whose grading hangs, crashes or exits without a report costs its
own row only: its cells are 0 and the reason is printed.  Supervised grading
ends by itself (every exercise has a wall time); ``--submission-timeout`` is
the last guard around a grader that does not.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .formats import points_text
from .supervisor import GradingError, Kit, add_exercise_options

REPORT_SUFFIX = {"gradescope": ".json", "exercism": ".json", "classroom50": ".json",
                 "junit": ".xml", "markdown": ".md"}


@dataclass
class Row:
    """One submission's line of the gradebook."""

    name: str
    points: dict[str, float] = field(default_factory=dict)
    max_points: dict[str, float] = field(default_factory=dict)
    problem: str = ""  # why it has no grade, if it has none
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.points.values())


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "grade-all", help="grade every submission in a folder; a gradebook CSV",
        description="Grade each folder of DIR (one submission each) with `pytest-concurrency grade`, "
                    "N at a time; write each student's report and one gradebook CSV.",
    )
    parser.add_argument("folder", metavar="DIR", type=Path)
    parser.add_argument("--jobs", "-j", metavar="N", type=int, default=1,
                        help="submissions graded side by side (default: 1)")
    parser.add_argument("--csv", metavar="PATH", type=Path, default=Path("gradebook.csv"),
                        help="the gradebook (default: gradebook.csv)")
    parser.add_argument("--reports", metavar="DIR", type=Path, default=None,
                        help="one report per submission, named after its folder "
                             "(default: reports/ beside the CSV)")
    parser.add_argument("--format", choices=tuple(REPORT_SUFFIX), default="gradescope",
                        help="format of each student's report (default: gradescope)")
    parser.add_argument("--kit", metavar="DIR", default=None,
                        help="the kit whose tests are run (as for `grade`)")
    parser.add_argument("--id-header", metavar="TEXT", default="Student",
                        help="header of the first column, the folder's name (default: Student; "
                             "e.g. 'SIS Login ID' for Canvas, 'Username' for Moodle)")
    add_exercise_options(parser)
    parser.add_argument("--submission-timeout", metavar="S", type=float, default=None,
                        help="the last guard: stop grading one submission after S seconds "
                             "(default: the exercise wall time times the number of exercises, "
                             "plus 2 minutes)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def submissions(folder: Path) -> list[Path]:
    """Every folder of ``folder`` but hidden ones: one submission each, by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


class _Grader:
    def __init__(self, args: argparse.Namespace, kit: Kit, exercises: list[str], reports: Path) -> None:
        self.args = args
        self.kit = kit
        self.exercises = exercises
        self.reports = reports
        self.lock = threading.Lock()
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        per_submission = args.submission_timeout
        if per_submission is None:
            per_submission = args.timeout * len(exercises) + 120.0
        self.deadline = per_submission

    def say(self, message: str) -> None:
        if not self.args.quiet:
            print(message, file=sys.stderr, flush=True)

    def report_of(self, submission: Path) -> Path:
        return self.reports / f"{submission.name}{REPORT_SUFFIX[self.args.format]}"

    def grade(self, submission: Path) -> Row:
        row = Row(submission.name)
        began = time.monotonic()
        report = self.report_of(submission)
        scores = report.with_name(f".{submission.name}.scores.json")  # gradescope, for the CSV
        command = [sys.executable, "-m", "pytest_concurrency", "grade", str(submission), "--quiet",
                   "--kit", str(self.kit.root), "--format", "gradescope", "--out", str(scores),
                   "--timeout", str(self.args.timeout), "--test-timeout", str(self.args.test_timeout),
                   "--exercise-budget", str(self.args.exercise_budget)]
        if self.args.format != "gradescope":
            command += ["--also", f"{self.args.format}:{report}"]
        for exercise in self.args.exercise or []:
            command += ["--exercise", exercise]
        with contextlib.suppress(FileNotFoundError):
            scores.unlink()
        with self.lock:
            if self.stopping:
                row.problem = "not graded: grade-all was interrupted"
                return row
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)
            self.running[submission.name] = proc
        try:
            _, err = proc.communicate(timeout=self.deadline)
        except subprocess.TimeoutExpired:
            # SIGTERM first: `grade` writes its report on the way out.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate()
            row.problem = f"grading took longer than {self.deadline:g} s (--submission-timeout) and was stopped"
        finally:
            with self.lock:
                self.running.pop(submission.name, None)
        row.seconds = time.monotonic() - began
        try:
            data = json.loads(scores.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            lines = err.decode("utf-8", "replace").strip().splitlines()
            row.problem = row.problem or f"no grade (exit status {proc.returncode}): " + (
                lines[-1] if lines else "no message")
            return row
        for exercise in self.exercises:
            row.points[exercise] = 0.0
            row.max_points[exercise] = 0.0
        for test in data.get("tests", []):
            exercise = str(test["name"]).split("/", 1)[0]
            if exercise in row.points:
                row.points[exercise] += float(test.get("score", 0))
                row.max_points[exercise] += float(test.get("max_score", 0))
        if self.args.format == "gradescope":
            os.replace(scores, report)
        else:
            scores.unlink()
        return row

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.running.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)


def write_csv(path: Path, rows: list[Row], exercises: list[str], id_header: str) -> None:
    """The gradebook: a header, then one row per submission; 0 where there is no grade."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([id_header, *exercises, "total"])
        for row in rows:
            writer.writerow([row.name, *(points_text(row.points.get(e, 0.0)) for e in exercises),
                             points_text(row.total)])
    os.replace(tmp, path)


def grade_all(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: no such folder of submissions")
    found = submissions(args.folder)
    if not found:
        parser.error(f"{args.folder}: no submission folders in it (one folder per submission)")
    if not args.csv.resolve().parent.is_dir():
        parser.error(f"--csv {args.csv}: folder {args.csv.parent} does not exist")
    try:
        kit = Kit.find(args.kit)
    except GradingError as error:
        print(f"pytest-concurrency grade-all: {error}", file=sys.stderr)
        return 3
    exercises = kit.exercise_names()
    if args.exercise:
        unknown = sorted(set(args.exercise) - set(exercises))
        if unknown:
            parser.error(f"no such exercise in the kit: {', '.join(unknown)}")
        exercises = [e for e in exercises if e in args.exercise]
    reports = args.reports if args.reports is not None else args.csv.resolve().parent / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    grader = _Grader(args, kit, exercises, reports.resolve())
    grader.say(f"grading {len(found)} submissions in {args.folder}, {args.jobs} at a time, "
               f"with the kit in {kit.root}")

    def on_signal(number: int, frame: object) -> None:
        grader.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    rows: list[Row] = []
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for row in pool.map(grader.grade, found):
                rows.append(row)
                state = f"problem: {row.problem}" if row.problem else f"{points_text(row.total)} points"
                grader.say(f"  {row.name}: {state} ({row.seconds:.0f} s)")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    write_csv(args.csv, rows, exercises, args.id_header)
    problems = [row for row in rows if row.problem]
    grader.say(f"wrote {args.csv} ({len(rows)} rows) and {len(rows) - len(problems)} reports in {reports}")
    for row in problems:
        print(f"warning: {row.name} has no grade (0 in the gradebook): {row.problem}", file=sys.stderr)
    return 128 + signal.SIGINT if grader.stopping else 0
