"""``pytest-concurrency`` (also ``python -m pytest_concurrency``): the command line.

::

    pytest-concurrency grade SUBMISSION [--out PATH] [--format FORMAT] [--jobs N]

grades a submission (a student's copy of the kit, or of its ``exercises/``
folder) with the kit's own tests, each exercise in a supervised child process,
and writes the report.  Exit status 0 whenever a grade was produced, whatever
the score; 2 for a bad command line, 3 when grading itself could not run,
128 + N after signal N (the report is written first).

``grade-all DIR`` grades every folder of DIR that way (``grade_all.py``).  The
student's commands, ``list``, ``next``, ``hint``, ``reset`` (``student.py``)
and ``watch`` (``watch.py``), work on the kit in the current folder or
``--kit DIR``; a bad exercise name or folder is exit status 2, one line.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from .._config import Setting, path_to, read_env
from . import grade_all, student, watch
from .formats import FORMATS, render, score_table_lines, write_report
from .model import GradeBook
from .supervisor import (
    GradingError,
    Kit,
    Limits,
    Supervisor,
    add_exercise_options,
    become_subreaper,
)

EXIT_CANNOT_GRADE = 3
# The report is rewritten as exercises finish, at most this often (and at the end).
REWRITE_EVERY = 1.0
STEP_SUMMARY = Setting(
    "github_step_summary", ini=False, env="GITHUB_STEP_SUMMARY", parse=path_to("anything"),
    default=None, help="set by GitHub Actions: the markdown report is also appended to this file",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-concurrency",
        description="Teach Python concurrency, test it deterministically, grade it honestly.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    grade = commands.add_parser(
        "grade", help="grade a submission, each exercise in its own supervised process",
        description="Grade SUBMISSION (a copy of the kit or of its exercises/ folder) with the "
                    "kit's own tests: only the exercise modules are taken from it.",
    )
    grade.add_argument("submission", metavar="SUBMISSION", type=Path)
    grade.add_argument("--out", metavar="PATH", type=Path, default=None,
                       help="where to write the report (default: standard output); rewritten as "
                            "exercises finish, so a grader killed mid-way still leaves one")
    grade.add_argument("--format", choices=FORMATS, default="gradescope",
                       help="report format (default: gradescope); markdown is also appended to "
                            "$GITHUB_STEP_SUMMARY when that is set")
    grade.add_argument("--also", metavar="FORMAT:PATH", action="append", default=[],
                       help="also write the report in FORMAT to PATH (repeatable), "
                            "e.g. --also junit:report.xml --also markdown:summary.md")
    grade.add_argument("--jobs", "-j", metavar="N", type=int, default=1,
                       help="exercises graded side by side (default: 1)")
    grade.add_argument("--kit", metavar="DIR", default=None,
                       help="the kit whose tests are run: the folder holding exercises/ and "
                            "pytest.ini (default: $PYTEST_CONCURRENCY_KIT, else the kit the "
                            "package is installed from)")
    add_exercise_options(grade)
    defaults = Limits()
    grade.add_argument("--memory", metavar="MB", type=int, default=defaults.memory_mb,
                       help=f"memory of one exercise's processes (default: {defaults.memory_mb})")
    grade.add_argument("--max-processes", metavar="N", type=int, default=defaults.processes,
                       help=f"processes of one exercise at once (default: {defaults.processes})")
    grade.add_argument("--exit-grace", metavar="S", type=float, default=defaults.exit_grace,
                       help="time a test process may take to exit after its last test "
                            f"(default: {defaults.exit_grace:g})")
    grade.add_argument("--import-timeout", metavar="S", type=float, default=defaults.collect,
                       help="time to collect one exercise's tests, which imports the submission's "
                            f"module (default: {defaults.collect:g})")
    grade.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    grade_all.add_parser(commands)
    _student_parsers(commands)
    return parser


STUDENT_COMMANDS = {
    "list": ("every exercise: status, points, a bar (from your last run of each)", None),
    "next": ("the exercise to work on now", None),
    "hint": ("the next hint of an exercise (each call shows the next one)", "?"),
    "reset": ("restore an exercise's stub; your file is kept as a backup", 1),
    "watch": ("run an exercise on every save of its module; keys h, l, r, q", "?"),
}


def _student_parsers(commands: argparse._SubParsersAction) -> None:
    for name, (text, exercise) in STUDENT_COMMANDS.items():
        command = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        if exercise == 1:
            command.add_argument("exercise", metavar="EXERCISE",
                                 help="the exercise: 06_locks, 06 or locks")
        elif exercise == "?":
            command.add_argument("exercise", metavar="EXERCISE", nargs="?", default=None,
                                 help="the exercise: 06_locks, 06 or locks (default: the first "
                                      "one not passed)")
        command.add_argument("--kit", metavar="DIR", default=None,
                             help="the kit (default: the current folder, or the one above it "
                                  "that holds exercises/)")


def _student(args: argparse.Namespace) -> int:
    try:
        kit = student.StudentKit.find(args.kit)
        exercise = getattr(args, "exercise", None)
        exercise = kit.resolve(exercise) if exercise is not None else None
        progress = student.Progress.load(kit)
        if args.command == "watch":
            return watch.watch(kit, exercise)
        if args.command == "list":
            lines = student.list_lines(kit, progress)
        elif args.command == "next":
            lines = student.next_lines(kit, progress)
        elif args.command == "hint":
            lines = student.next_hint(kit, exercise or progress.current(kit), progress)
        else:
            assert exercise is not None
            lines = student.reset(kit, exercise)
    except student.StudentError as error:
        print(f"pytest-concurrency {args.command}: {error}", file=sys.stderr)
        return 2
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # `pytest-concurrency list | head`
        # Python's advice: point stdout at devnull, so the flush at exit fails no more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _outputs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[tuple[str, Path | None]]:
    outputs: list[tuple[str, Path | None]] = [(args.format, args.out)]
    for extra in args.also:
        fmt, sep, path = extra.partition(":")
        if not sep or fmt not in FORMATS or not path:
            parser.error(f"--also {extra}: expected FORMAT:PATH with FORMAT one of {', '.join(FORMATS)}")
        outputs.append((fmt, Path(path)))
    for _, path in outputs:
        if path is not None and not path.parent.resolve().is_dir():
            parser.error(f"{path}: folder {path.parent} does not exist")
    return outputs


class _Reporter:
    """Writes every requested report, now and as grading goes on."""

    def __init__(self, outputs: list[tuple[str, Path | None]]) -> None:
        self.outputs = outputs
        self.last = 0.0

    def update(self, book: GradeBook) -> None:
        now = time.monotonic()
        if now - self.last < REWRITE_EVERY:
            return
        self.last = now
        self.write_files(book)

    def write_files(self, book: GradeBook) -> None:
        for fmt, path in self.outputs:
            if path is not None:
                write_report(book, fmt, path)

    def final(self, book: GradeBook) -> None:
        self.write_files(book)
        for fmt, path in self.outputs:
            if path is None:
                sys.stdout.write(render(book, fmt))
                sys.stdout.flush()
        if any(fmt == "markdown" for fmt, _ in self.outputs):
            summary = read_env(STEP_SUMMARY)
            if summary is not None:
                with open(summary, "a", encoding="utf-8") as stream:
                    stream.write(render(book, "markdown"))


def _print_table(book: GradeBook) -> None:
    exercises = book.exercises()
    for text, _ in score_table_lines(exercises):
        print(text, file=sys.stderr)
    passed = sum(e.status == "passed" for e in exercises)
    print(f"total: {book.score:g}/{book.max_score:g} points, "
          f"{passed}/{len(exercises)} exercises passed", file=sys.stderr)
    for note in book.notes:
        print(f"note: {note}", file=sys.stderr)


def grade(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    outputs = _outputs(args, parser)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    progress = (lambda message: None) if args.quiet else (
        lambda message: print(message, file=sys.stderr, flush=True))
    limits = Limits(wall=args.timeout, test=args.test_timeout, memory_mb=args.memory,
                    processes=args.max_processes, exit_grace=args.exit_grace,
                    collect=args.import_timeout, budget=args.exercise_budget)
    reporter = _Reporter(outputs)
    try:
        kit = Kit.find(args.kit)
        supervisor = Supervisor(
            kit, args.submission, limits, jobs=args.jobs, exercises=args.exercise,
            on_progress=progress, on_update=reporter.update, reap_orphans=become_subreaper(),
        )
    except GradingError as error:
        print(f"pytest-concurrency grade: {error}", file=sys.stderr)
        return EXIT_CANNOT_GRADE

    received: list[int] = []

    def on_signal(number: int, frame: object) -> None:
        received.append(number)
        supervisor.interrupt(signal.Signals(number).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        progress(f"grading {args.submission} with the kit in {kit.root}")
        book = supervisor.run()
    except GradingError as error:
        print(f"pytest-concurrency grade: {error}", file=sys.stderr)
        return EXIT_CANNOT_GRADE
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reporter.final(book)
    if not args.quiet:
        _print_table(book)
    if received:
        return 128 + received[0]
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "grade":
        return grade(args, parser)
    if args.command == "grade-all":
        return grade_all.grade_all(args, parser)
    if args.command in STUDENT_COMMANDS:
        return _student(args)
    parser.error(f"unknown command {args.command}")
    return 2
