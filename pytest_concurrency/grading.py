"""Grading in every run: the ``points`` marker, the score table, ``--grade-json``.

Each exercise folder is one line of the grade.  A test weighs what its
``points`` marker says (1 without one) and scores it only when it passed in
every phase: a hygiene failure at teardown takes the points back.

A test that fails because the stub still raises ``NotImplementedError`` is
*not started*: it is reported in one short line and kept out of the wall of
tracebacks, since there is nothing to debug yet.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .errors import ImplementationError
from .layout import exercise_folder, first_hint, graded_name

GRADE_JSON_HELP = (
    "write the grade in Gradescope's results.json format to PATH (rewritten after every "
    "test, so a run that is killed still leaves what finished)"
)
POINTS_HELP = "points(n): the test's weight in the grade (default 1)"

NOT_STARTED = "not started"
BROKEN = "broken"


@dataclass
class TestResult:
    name: str
    exercise: str
    points: float
    readme: Path | None = None
    outcome: str = "not run"  # passed, failed, not started, broken, skipped, not run
    message: str = ""
    duration: float = 0.0

    @property
    def score(self) -> float:
        return self.points if self.outcome == "passed" else 0.0


@dataclass
class ExerciseGrade:
    name: str
    tests: list[TestResult]

    @property
    def passed(self) -> int:
        return sum(t.outcome == "passed" for t in self.tests)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def status(self) -> str:
        outcomes = {t.outcome for t in self.tests}
        if outcomes == {"passed"}:
            return "passed"
        if BROKEN in outcomes:
            return BROKEN
        if outcomes <= {NOT_STARTED, "not run"}:
            return NOT_STARTED
        return "failing"

    @property
    def problem(self) -> str:
        """The one line that explains a broken exercise."""
        return next((t.message for t in self.tests if t.outcome == BROKEN), "")


@dataclass
class GradeBook:
    results: dict[str, TestResult] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def exercises(self) -> list[ExerciseGrade]:
        by_name: dict[str, list[TestResult]] = {}
        for result in self.results.values():
            by_name.setdefault(result.exercise, []).append(result)
        return [ExerciseGrade(name, by_name[name]) for name in sorted(by_name)]

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results.values())

    @property
    def max_score(self) -> float:
        return sum(r.points for r in self.results.values())


gradebook_key = pytest.StashKey[GradeBook]()
_phases_key = pytest.StashKey[dict[str, list[pytest.TestReport]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("concurrency", "pytest-concurrency")
    group.addoption("--grade-json", metavar="PATH", default=None, help=GRADE_JSON_HELP)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{POINTS_HELP}")
    config.stash[gradebook_key] = GradeBook()
    config.stash[_phases_key] = {}


def points_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("points")
    if marker is None:
        return 1.0
    value = marker.args[0] if marker.args else marker.kwargs.get("n")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.points takes one positive number, got {marker.args!r}"
        )
    return float(value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    book = config.stash[gradebook_key]
    for item in items:
        folder = exercise_folder(item.path)
        if folder is None:
            continue
        points = points_of(item)
        # Carried by every report, so the xdist controller and JUnit XML see them too.
        item.user_properties.append(("exercise", folder.name))
        item.user_properties.append(("points", points))
        name = graded_name(item.path, item.nodeid)
        book.results[item.nodeid] = TestResult(name, folder.name, points, folder / "README.md")


def _classify(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str] | None:
    """(outcome, one-line message) for failures that need no traceback."""
    error: BaseException | None = excinfo.value
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ImplementationError):
            return BROKEN, str(error)
        if isinstance(error, NotImplementedError):
            return NOT_STARTED, f"not started: {error}" if str(error) else NOT_STARTED
        error = error.__cause__ or error.__context__
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.excinfo is not None and exercise_folder(item.path):
        classified = _classify(call.excinfo)
        if classified:
            report.grade_outcome, report.longrepr = classified
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    outcome = getattr(report, "grade_outcome", None)
    if outcome == NOT_STARTED:
        return NOT_STARTED, "n", "NOT STARTED"
    if outcome == BROKEN:
        return BROKEN, "B", "BROKEN"
    return None


def _result_for(book: GradeBook, config: pytest.Config, report: pytest.TestReport) -> TestResult | None:
    result = book.results.get(report.nodeid)
    if result is not None:
        return result
    props = dict(report.user_properties)
    if "exercise" not in props:
        return None
    # Under xdist the controller never collected the item: build it from the report.
    path = Path(config.rootpath, report.location[0])
    folder = exercise_folder(path)
    result = TestResult(
        graded_name(path, report.nodeid), props["exercise"], float(props["points"]),
        folder / "README.md" if folder else None,
    )
    book.results[report.nodeid] = result
    return result


class _Recorder:
    """Turns the three reports of a test into one graded result."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.book = config.stash[gradebook_key]
        self.json_path = _json_path(config)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = _result_for(self.book, self.config, report)
        if result is None:
            return
        result.duration += report.duration
        if report.failed:
            outcome = getattr(report, "grade_outcome", "failed")
            if result.outcome not in ("failed", BROKEN, NOT_STARTED):
                result.outcome = outcome
                result.message = _longrepr_text(report)
            elif report.when == "teardown":
                result.message += "\n\n" + _longrepr_text(report)
        elif report.skipped and result.outcome == "not run":
            result.outcome = "skipped"
            result.message = _longrepr_text(report)
        elif report.when == "call" and report.passed and result.outcome == "not run":
            result.outcome = "passed"
        if report.when == "teardown" and self.json_path:
            write_gradescope(self.book, self.json_path)

    def pytest_sessionfinish(self) -> None:
        if self.json_path:
            write_gradescope(self.book, self.json_path)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.book.results:
            write_score_table(self.book, terminalreporter, self.config)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.pluginmanager.register(_Recorder(session.config), "concurrency-grade-recorder")


def _json_path(config: pytest.Config) -> Path | None:
    value = config.getoption("grade_json")
    if not value:
        return None
    path = Path(config.invocation_params.dir, value)
    if not path.parent.is_dir():
        raise pytest.UsageError(f"--grade-json {value}: folder {path.parent} does not exist")
    return path


def _longrepr_text(report: pytest.TestReport) -> str:
    text = report.longreprtext if report.longrepr is not None else ""
    limit = 8000
    return text if len(text) <= limit else text[: limit // 2] + "\n…\n" + text[-limit // 2 :]


def gradescope_results(book: GradeBook) -> dict:
    """Gradescope's ``results.json``: https://gradescope-autograders.readthedocs.io."""
    tests = [
        {
            "name": r.name,
            "score": r.score,
            "max_score": r.points,
            "status": "passed" if r.outcome == "passed" else "failed",
            "output": r.message if r.outcome != "passed" else "",
            "visibility": "visible",
        }
        for r in book.results.values()
    ]
    return {
        "score": book.score,
        "max_score": book.max_score,
        "execution_time": round(time.monotonic() - book.started, 3),
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": tests,
    }


def write_json_atomically(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    os.replace(tmp, path)


def write_gradescope(book: GradeBook, path: Path) -> None:
    write_json_atomically(path, gradescope_results(book))


def _fmt(points: float) -> str:
    return f"{points:g}"


_STATUS_MARKUP = {"passed": {"green": True}, "failing": {"red": True}, BROKEN: {"red": True},
                  NOT_STARTED: {"yellow": True}}


def score_table_lines(exercises: Iterable[ExerciseGrade]) -> list[tuple[str, str]]:
    """The table as (text, status) rows, header first."""
    rows = [("exercise", "tests", "points", "status")]
    statuses = [""]
    for ex in exercises:
        rows.append((ex.name, f"{ex.passed}/{len(ex.tests)}", f"{_fmt(ex.score)}/{_fmt(ex.max_score)}", ex.status))
        statuses.append(ex.status)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), status)
        for row, status in zip(rows, statuses)
    ]


def write_score_table(book: GradeBook, reporter, config: pytest.Config) -> None:
    exercises = book.exercises()
    reporter.write_sep("=", "pytest-concurrency: score")
    for text, status in score_table_lines(exercises):
        reporter.write_line(text, **_STATUS_MARKUP.get(status, {"bold": not status}))
    reporter.write_line(
        f"total: {_fmt(book.score)}/{_fmt(book.max_score)} points, "
        f"{sum(e.status == 'passed' for e in exercises)}/{len(exercises)} exercises passed"
    )
    for ex in exercises:
        if ex.status == BROKEN:
            reporter.write_line(f"{ex.name}: {ex.problem}", red=True)
    upcoming = next((e for e in exercises if e.status != "passed"), None)
    if upcoming is None:
        reporter.write_line("Every exercise passes. Well done!", green=True, bold=True)
        return
    readme = next((t.readme for t in upcoming.tests if t.readme), None)
    where = ""
    if readme is not None:
        try:
            where = f": read {readme.relative_to(config.invocation_params.dir)}"
        except ValueError:
            where = f": read {readme}"
    reporter.write_line(f"next: {upcoming.name} ({upcoming.status}){where}", bold=True)
    hint = first_hint(readme) if readme else None
    if hint and upcoming.status in (NOT_STARTED, "failing"):
        reporter.write_line(f"hint 1: {hint}")
