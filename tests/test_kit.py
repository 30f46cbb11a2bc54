"""The kit check: solutions score full marks, stubs score zero, broken implementations are caught.

Each case runs the exercise's graded tests in a fresh pytest, exactly as a
student or a grader would, and reads the grade from ``--grade-json``.
"""

from __future__ import annotations

import re

import pytest

from kit import SOLUTIONS, BrokenVariant, broken_variants, exercise_names, grade, mirror_with, short

# A path inside the package, as a traceback, a stack or Hypothesis would print it.
PLUGIN_PATH = re.compile(r"(?<![\w.-])pytest_concurrency[/\\]\S*\.py")


def failures(result: dict) -> str:
    lines = [f"{t['name']}: {t['output'][:2000]}" for t in result["tests"] if t["status"] != "passed"]
    return "\n\n".join(lines) or result["pytest_output"][-3000:]


@pytest.mark.parametrize("exercise", exercise_names())
def test_solution_scores_full_marks(exercise, tmp_path):
    result = grade(exercise, SOLUTIONS, tmp_path)
    assert result["tests"], f"{exercise}: no graded test ran"
    assert result["score"] == result["max_score"], failures(result)
    assert result["exit_code"] == 0, result["pytest_output"][-3000:]


@pytest.mark.parametrize("exercise", exercise_names())
def test_stub_scores_zero_and_every_test_is_not_started(exercise, tmp_path):
    result = grade(exercise, None, tmp_path)
    assert result["tests"], f"{exercise}: no graded test ran"
    assert result["score"] == 0
    started = [t["name"] for t in result["tests"] if not t["output"].startswith("not started")]
    assert not started, (
        f"these tests of {exercise} do not fail as 'not started' against the stub "
        f"(every test must call the stub before checking anything): {started}\n{failures(result)}"
    )


@pytest.mark.parametrize("variant", broken_variants(), ids=lambda v: f"{v.exercise}/{v.name}")
def test_broken_implementation_is_caught(variant: BrokenVariant, tmp_path):
    # The patch applied to the current solution (tests/test_kit_patches.py checks it applies).
    impl = mirror_with(tmp_path, variant.exercise, variant.source())
    # Only the tests that must catch it: the others prove nothing about the
    # variant, and some exercises' tests are costly (processes, interpreters).
    selection = ["-k", " or ".join(variant.caught_by)] if variant.caught_by else []
    result = grade(variant.exercise, impl, tmp_path, *selection)
    failed = {short(t["name"]) for t in result["tests"] if t["status"] != "passed"}
    assert failed, f"{variant.exercise}/{variant.name} ({variant.mistake}) passed every test"
    unusable = [t["name"] for t in result["tests"] if t["output"].startswith("not started")
                or "does not exist" in t["output"] or "SyntaxError" in t["output"]]
    assert not unusable, f"the variant itself does not load or is unfinished: {unusable}"
    # What the student reads names their code and the tests, never the plugin's own files.
    plumbing = [line for line in result["pytest_output"].splitlines() if PLUGIN_PATH.search(line)]
    assert not plumbing, (
        f"{variant.exercise}/{variant.name}: the output names the plugin's own files:\n"
        + "\n".join(plumbing[:10])
    )
    missed = [name for name in variant.caught_by if name not in failed]
    assert not missed, (
        f"{variant.exercise}/{variant.name} ({variant.mistake}) declares CAUGHT_BY {missed}, "
        f"but those tests passed; failed were {sorted(failed)}"
    )


def test_every_exercise_has_a_solution_and_broken_implementations():
    variants = broken_variants()
    for exercise in exercise_names():
        assert (SOLUTIONS / exercise).is_dir(), f"solutions/{exercise} is missing"
        count = sum(v.exercise == exercise for v in variants)
        assert count >= 4, (
            f"{exercise} has {count} broken implementations (.patch) under tests/broken; want ≥ 4"
        )


def test_the_lock_order_mistake_of_06_reads_in_120_lines(tmp_path, monkeypatch):
    # Issue 18: 176 lines, one block per pair of accounts, Hypothesis's explanation
    # pointing into the scheduler. The whole run, as the student types it: not in CI,
    # where pytest repeats each message in the summary and Hypothesis adds its blob.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    variant = next(v for v in broken_variants()
                   if (v.exercise, v.name) == ("06_locks", "locks_taken_in_argument_order"))
    impl = mirror_with(tmp_path, variant.exercise, variant.source())
    output = grade(variant.exercise, impl, tmp_path)["pytest_output"]
    assert len(output.splitlines()) <= 120, output
    assert not PLUGIN_PATH.search(output), output
    assert "more pairs of locks taken at the same lines" in output, output
