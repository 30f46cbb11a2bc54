"""The implementation loader: ``--impl DIR`` and ``load_impl``."""

from __future__ import annotations

import json
import textwrap

import pytest

TEST_GREET = """
from pytest_concurrency import load_impl

greet = load_impl("greet")

def test_hello():
    assert greet.hello() == "hello"
"""
TEST_COUNT = """
import pytest
from pytest_concurrency import load_impl

count = load_impl("count")

@pytest.mark.points(3)
def test_three():
    assert count.three() == 3
"""


@pytest.fixture
def kit(pytester: pytest.Pytester):
    """A tiny kit: two exercises whose stubs raise NotImplementedError."""
    pytester.makeini("[pytest]\naddopts = --import-mode=importlib\n")
    stub = 'def {}():\n    raise NotImplementedError("{}: see README")\n'
    files = {
        "exercises/01_greet/greet.py": stub.format("hello", "hello"),
        "exercises/01_greet/test_greet.py": TEST_GREET,
        "exercises/02_count/count.py": stub.format("three", "three"),
        "exercises/02_count/test_count.py": TEST_COUNT,
        "answers/01_greet/greet.py": 'def hello():\n    return "hello"\n',
        "answers/02_count/count.py": "def three():\n    return 3\n",
    }
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return pytester


def grade(kit: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    result = kit.runpytest("exercises", "--grade-json", "grade.json", *args)
    return result, json.loads((kit.path / "grade.json").read_text())


def outcomes(data: dict) -> dict[str, tuple[str, float]]:
    return {t["name"].split("::")[0].split("/")[0]: (t["status"], t["score"]) for t in data["tests"]}


def test_default_is_the_module_beside_the_test(kit):
    result, data = grade(kit)
    result.assert_outcomes()  # not started is neither passed nor failed in the summary
    assert data["score"] == 0 and data["max_score"] == 4
    result.stdout.fnmatch_lines(["*01_greet*0/1*0/1*not started*", "*02_count*0/1*0/3*not started*"])


def test_impl_runs_the_same_tests_against_another_tree(kit):
    result, data = grade(kit, "--impl", "answers")
    result.assert_outcomes(passed=2)
    assert data["score"] == data["max_score"] == 4


def test_impl_accepts_a_whole_copy_of_the_kit(kit):
    (kit.path / "copy").mkdir()
    (kit.path / "answers").rename(kit.path / "copy" / "exercises")
    result, data = grade(kit, "--impl", "copy")
    result.assert_outcomes(passed=2)


def test_impl_to_a_missing_folder_is_one_clear_line(kit):
    result = kit.runpytest("exercises", "--impl", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --impl=nowhere: no such folder (*nowhere); expected an existing folder"])


def test_a_missing_module_fails_its_exercise_in_one_line_and_the_others_run(kit):
    (kit.path / "answers/01_greet/greet.py").unlink()
    result, data = grade(kit, "--impl", "answers")
    assert outcomes(data) == {"01_greet": ("failed", 0), "02_count": ("passed", 3)}
    result.stdout.fnmatch_lines(["*01_greet*broken*", "01_greet: *answers/01_greet/greet.py does not exist*"])
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("def hello(:\n    pass\n", "*greet.py:1: SyntaxError: *"),
        ("import no_such_module_here\n", "*greet.py:1: importing it raised ModuleNotFoundError*"),
        ("raise SystemExit(0)\n", "*importing greet.py called sys.exit(0) at line 1: `raise SystemExit(0)`*"),
    ],
    ids=["syntax-error", "import-error", "exit-at-import"],
)
def test_a_module_that_does_not_import_scores_zero_and_the_run_goes_on(kit, source, shown):
    (kit.path / "answers/01_greet/greet.py").write_text(source)
    result, data = grade(kit, "--impl", "answers")
    assert outcomes(data) == {"01_greet": ("failed", 0), "02_count": ("passed", 3)}
    result.stdout.fnmatch_lines([shown])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_load_impl_outside_pytest_loads_the_module_beside_the_caller(tmp_path):
    (tmp_path / "01_x").mkdir()
    (tmp_path / "01_x" / "modx.py").write_text("VALUE = 42\n")
    from pytest_concurrency.impl import load_impl

    module = load_impl("modx", test_file=str(tmp_path / "01_x" / "test_modx.py"))
    assert module.VALUE == 42
