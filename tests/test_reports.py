"""Report formats: each one built from the same grade book, each one what its reader expects."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_concurrency.grading.formats import FORMATS, render
from pytest_concurrency.grading.model import CRASHED, NOT_RUN, GradeBook, TestResult


def book() -> GradeBook:
    """07: one pass, one failure; 09: a crash and a test it cost."""
    grade = GradeBook()
    rows = [
        ("07_pool/test_pool.py::test_map", "07_pool", 2, "passed", ""),
        ("07_pool/test_pool.py::test_shutdown[1]", "07_pool", 3, "failed",
         "AssertionError: 1 thread | left\nsecond line \x00"),
        ("09_buffer/test_buffer.py::test_put", "09_buffer", 1.5, CRASHED,
         "crashed: the test process was killed by SIGSEGV"),
        ("09_buffer/test_buffer.py::test_get", "09_buffer", 1, NOT_RUN, "not run: crashed"),
    ]
    for name, exercise, points, outcome, message in rows:
        grade.results[name] = TestResult(name, exercise, float(points), outcome=outcome,
                                         message=message)
    grade.incidents["09_buffer"] = (CRASHED, "crashed: the test process was killed by SIGSEGV")
    grade.notes.append("edited test files in the submission: exercises/07_pool/test_pool.py")
    return grade


def test_gradescope_has_scores_statuses_and_the_notes():
    data = json.loads(render(book(), "gradescope"))
    assert (data["score"], data["max_score"]) == (2, 7.5)
    assert [t["status"] for t in data["tests"]] == ["passed", "failed", "failed", "failed"]
    assert data["tests"][0]["name"] == "07_pool/test_pool.py::test_map"
    assert "edited test files" in data["output"]


def test_exercism_v3_statuses_messages_and_tasks():
    data = json.loads(render(book(), "exercism"))
    assert data["version"] == 3 and data["status"] == "fail"
    assert [t["status"] for t in data["tests"]] == ["pass", "fail", "error", "error"]
    assert [t["task_id"] for t in data["tests"]] == [7, 7, 9, 9]
    assert "message" not in data["tests"][0]
    assert data["tests"][2]["message"].startswith("crashed")
    assert all(t["test_code"] for t in data["tests"])


def test_exercism_error_when_no_test_ran_to_a_verdict():
    grade = GradeBook()
    grade.results["x"] = TestResult("01_a/test_a.py::test_x", "01_a", 1.0, outcome=CRASHED,
                                    message="crashed")
    grade.incidents["01_a"] = (CRASHED, "crashed: exited with status 0 before running any test")
    data = json.loads(render(grade, "exercism"))
    assert data["status"] == "error"
    assert "before running any test" in data["message"]


def test_classroom50_integer_scores_and_the_runners_environment():
    environ = {"CLASSROOM": "cs-101", "ASSIGNMENT": "concurrency", "SUBMISSION_TAG": "submit/1",
               "COMMIT_URL": "https://example.invalid/c", "RELEASE_URL": "https://example.invalid/r"}
    data = json.loads(render(book(), "classroom50", environ))
    assert data["schema"] == "classroom50/result/v1"
    assert (data["classroom"], data["assignment"], data["submission"]) == (
        "cs-101", "concurrency", "submit/1")
    assert data["review"] == "https://example.invalid/c"  # falls back to the commit
    assert data["datetime"].endswith("Z")
    for test in data["tests"]:
        assert set(test) == {"test-name", "passed", "score", "max-score"}
        assert isinstance(test["score"], int) and isinstance(test["max-score"], int)
    assert data["score"] == sum(t["score"] for t in data["tests"]) == 2
    assert data["max-score"] == sum(t["max-score"] for t in data["tests"])
    assert isinstance(data["score"], int)


def test_junit_xml_counts_properties_and_safe_text():
    root = ET.fromstring(render(book(), "junit"))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "2")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"07_pool", "09_buffer"}
    props = {p.get("name"): p.get("value") for p in suites["07_pool"].find("properties")}
    assert props == {"points": "5", "score": "2", "status": "failing"}
    case = suites["07_pool"].findall("testcase")[1]
    assert case.get("name") == "test_shutdown[1]" and case.get("file") == "07_pool/test_pool.py"
    case_props = {p.get("name"): p.get("value") for p in case.find("properties")}
    assert case_props["points"] == "3" and case_props["score"] == "0"
    assert "\x00" not in case.find("failure").text
    assert suites["09_buffer"].findall("testcase")[0].find("error").get("type") == CRASHED


def test_markdown_table_escapes_cells_and_lists_tests_without_points():
    text = render(book(), "markdown")
    assert "| 07_pool | 1/2 | 2/5 | ❌ failing |" in text
    assert "| 09_buffer | 0/2 | 0/2.5 | 💥 crashed: crashed: the test process was killed by SIGSEGV |" in text
    assert "1 thread \\| left" in text
    assert "> edited test files" in text


def test_an_unknown_format_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown format 'tap': expected one of gradescope"):
        render(book(), "tap")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_empty_book(fmt):
    assert render(GradeBook(), fmt)
