"""The grade in the formats graders read.

Every format is built from the same :class:`~pytest_concurrency.grading.GradeBook`
(one :class:`~pytest_concurrency.grading.TestResult` per test, named
``07_thread_pool/test_thread_pool.py::test_x``), so they always agree::

    from pytest_concurrency.grading.formats import render

    text = render(book, "exercism")      # a str, ready to write

=============  ===========================================================
``gradescope``  Gradescope's ``results.json`` (also what ``--grade-json`` writes)
``exercism``    Exercism's test-runner ``results.json``, version 3
``classroom50`` Classroom 50's ``result.json`` (``classroom50/result/v1``, integer scores)
``junit``       JUnit XML: one suite per exercise, points and scores as properties
``markdown``    a table for a CI step summary (``$GITHUB_STEP_SUMMARY``)
=============  ===========================================================
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .model import (
    BROKEN,
    INCIDENTS,
    NOT_RUN,
    NOT_STARTED,
    PASSED,
    SKIPPED,
    ExerciseGrade,
    GradeBook,
    TestResult,
)

FORMATS = ("gradescope", "exercism", "classroom50", "junit", "markdown")

# Exercism shows at most this much of a test's output.
EXERCISM_OUTPUT_LIMIT = 500


def render(book: GradeBook, fmt: str, environ: Mapping[str, str] | None = None) -> str:
    """The report of ``book`` in format ``fmt``, as text.

    >>> book = GradeBook()
    >>> json.loads(render(book, "exercism"))["version"]
    3
    """
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}") from None
    return renderer(book, os.environ if environ is None else environ)


def write_report(book: GradeBook, fmt: str, path: Path) -> None:
    """Write the report in ``fmt`` to ``path``, atomically."""
    write_atomically(path, render(book, fmt))


def write_gradescope(book: GradeBook, path: Path) -> None:
    """What ``--grade-json`` writes after every test."""
    write_atomically(path, _json(gradescope_results(book)))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader never sees half a file (and a
    kill in the middle leaves the previous version)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- Gradescope ---------------------------------------------------------------

def gradescope_results(book: GradeBook) -> dict:
    """Gradescope's ``results.json``: https://gradescope-autograders.readthedocs.io."""
    tests = [
        {
            "name": r.name,
            "score": r.score,
            "max_score": r.points,
            "status": "passed" if r.passed else "failed",
            "output": "" if r.passed else r.explanation,
            "visibility": "visible",
        }
        for r in book.results.values()
    ]
    results = {
        "score": book.score,
        "max_score": book.max_score,
        "execution_time": round(time.monotonic() - book.started, 3),
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": tests,
    }
    if book.notes:
        results["output"] = "\n\n".join(book.notes)
    return results



def _gradescope(book: GradeBook, environ: Mapping[str, str]) -> str:
    return _json(gradescope_results(book))


# --- Exercism: test-runner interface, version 3 ------------------------------

def _exercism_status(result: TestResult) -> str:
    if result.passed:
        return "pass"
    if result.outcome in (*INCIDENTS, BROKEN, NOT_RUN):
        return "error"  # the test could not run to a verdict
    return "fail"


def exercism_results(book: GradeBook) -> dict:
    tests = []
    for result in book.results.values():
        entry: dict = {
            "name": result.name,
            "status": _exercism_status(result),
            "test_code": result.name,
            "task_id": _task_id(result.exercise),
        }
        if not result.passed:
            entry["message"] = result.explanation or result.outcome
        tests.append(entry)
    passed = all(t["status"] == "pass" for t in tests)
    data: dict = {"version": 3, "status": "pass" if tests and passed else "fail", "tests": tests}
    if not tests:
        data["status"] = "error"
        data["message"] = "no test could be run: " + ("; ".join(book.notes) or "no exercise found")
    elif all(t["status"] == "error" for t in tests):
        # Exercism's "error": no test ran to a verdict (every exercise broke at import, say).
        data["status"] = "error"
        data["message"] = "\n".join(
            sorted({f"{e.name}: {e.problem or e.status}" for e in book.exercises()})
        )
    return data


def _task_id(exercise: str) -> int:
    """Exercism's tasks are numbered from 1: an exercise ``07_thread_pool`` is task 7."""
    number = int(exercise[:2]) if exercise[:2].isdigit() else 0
    return max(number, 1)


def _exercism(book: GradeBook, environ: Mapping[str, str]) -> str:
    return _json(exercism_results(book))


# --- Classroom 50 -------------------------------------------------------------

# Values Classroom 50's runner provides in the environment of the autograder.
CLASSROOM50_ENV = {
    "classroom": "CLASSROOM",
    "assignment": "ASSIGNMENT",
    "submission": "SUBMISSION_TAG",
    "commit": "COMMIT_URL",
    "release": "RELEASE_URL",
}


def classroom50_results(book: GradeBook, environ: Mapping[str, str]) -> dict:
    """``classroom50/result/v1``: integer scores, summed from the per-test ones."""
    tests = []
    for result in book.results.values():
        max_score = round(result.points)
        tests.append({
            "test-name": result.name,
            "passed": result.passed,
            "score": max_score if result.passed else 0,
            "max-score": max_score,
        })
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data: dict = {"schema": "classroom50/result/v1"}
    for key, variable in CLASSROOM50_ENV.items():
        data[key] = environ.get(variable, "")
    data["review"] = environ.get("REVIEW_URL") or environ.get("COMMIT_URL", "")
    # owner and assignment_type are stamped by Classroom 50's runner itself.
    data["datetime"] = now
    data["graded_at"] = now
    data["score"] = sum(t["score"] for t in tests)
    data["max-score"] = sum(t["max-score"] for t in tests)
    data["tests"] = tests
    return data


def _classroom50(book: GradeBook, environ: Mapping[str, str]) -> str:
    return _json(classroom50_results(book, environ))


# --- JUnit XML ----------------------------------------------------------------

# XML 1.0 cannot carry most control characters, and a student's output may hold any.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", text)


def _properties(parent: ET.Element, **values: object) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=_xml_text(str(value)))


def junit_xml(book: GradeBook) -> str:
    suites = ET.Element("testsuites", name="pytest-concurrency")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    total_time = 0.0
    for exercise in book.exercises():
        counts = dict.fromkeys(totals, 0)
        duration = sum(t.duration for t in exercise.tests)
        suite = ET.SubElement(suites, "testsuite", name=exercise.name)
        _properties(suite, points=points_text(exercise.max_score), score=points_text(exercise.score),
                    status=exercise.status)
        for result in exercise.tests:
            counts["tests"] += 1
            module = result.file.removesuffix(".py").replace("/", ".")
            case = ET.SubElement(
                suite, "testcase", classname=module, name=result.function, file=result.file,
                time=f"{result.duration:.3f}",
            )
            _properties(case, points=points_text(result.points), score=points_text(result.score),
                        outcome=result.outcome)
            if result.passed:
                continue
            text = _xml_text(result.explanation or result.outcome)
            first_line = text.strip().split("\n", 1)[0][:200]
            if result.outcome == SKIPPED and not result.edited:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=first_line).text = text
            elif result.outcome in (*INCIDENTS, NOT_RUN):
                counts["errors"] += 1
                ET.SubElement(case, "error", message=first_line, type=result.outcome).text = text
            else:
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=first_line, type=result.outcome).text = text
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{duration:.3f}")
        total_time += duration
    for key, value in totals.items():
        suites.set(key, str(value))
    suites.set("time", f"{total_time:.3f}")
    _properties(suites, points=points_text(book.max_score), score=points_text(book.score),
                notes=" | ".join(book.notes))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _junit(book: GradeBook, environ: Mapping[str, str]) -> str:
    return junit_xml(book)


# --- Markdown -----------------------------------------------------------------

_STATUS_ICON = {PASSED: "✅", "failing": "❌", BROKEN: "💥", NOT_STARTED: "⬜",
                "timeout": "⏱️", "crashed": "💥", "killed": "🛑"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown_table(book: GradeBook) -> str:
    exercises = book.exercises()
    passed = sum(e.status == PASSED for e in exercises)
    lines = [
        f"### pytest-concurrency: {points_text(book.score)}/{points_text(book.max_score)} points",
        "",
        "| exercise | tests | points | status |",
        "| --- | ---: | ---: | --- |",
    ]
    for ex in exercises:
        status = f"{_STATUS_ICON.get(ex.status, '')} {ex.status}".strip()
        if ex.problem:
            status += f": {_cell(ex.problem)[:160]}"
        lines.append(
            f"| {ex.name} | {ex.passed}/{len(ex.tests)} | "
            f"{points_text(ex.score)}/{points_text(ex.max_score)} | {status} |"
        )
    lines += ["", f"**{passed}/{len(exercises)} exercises passed.**"]
    failing = [r for r in book.results.values() if not r.passed]
    if failing:
        lines += ["", f"<details><summary>{len(failing)} tests without points</summary>", ""]
        for result in failing:
            first = (result.explanation or result.outcome).strip().split("\n", 1)[0]
            lines.append(f"- `{result.name}`: {_cell(first)[:200]}")
        lines += ["", "</details>"]
    for note in book.notes:
        lines += ["", f"> {_cell(note)}"]
    return "\n".join(lines) + "\n"


def _markdown(book: GradeBook, environ: Mapping[str, str]) -> str:
    return markdown_table(book)


_RENDERERS: dict[str, Callable[[GradeBook, Mapping[str, str]], str]] = {
    "gradescope": _gradescope,
    "exercism": _exercism,
    "classroom50": _classroom50,
    "junit": _junit,
    "markdown": _markdown,
}

__all__ = [
    "FORMATS", "classroom50_results", "exercism_results", "junit_xml", "markdown_table",
    "render", "write_report",
]


# --- the score table (terminal) ----------------------------------------------

def points_text(points: float) -> str:
    return f"{points:g}"


def score_table_lines(exercises: Iterable[ExerciseGrade]) -> list[tuple[str, str]]:
    """The table as (text, status) rows, header first."""
    rows = [("exercise", "tests", "points", "status")]
    statuses = [""]
    for ex in exercises:
        rows.append((ex.name, f"{ex.passed}/{len(ex.tests)}", f"{points_text(ex.score)}/{points_text(ex.max_score)}", ex.status))
        statuses.append(ex.status)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), status)
        for row, status in zip(rows, statuses, strict=True)
    ]

