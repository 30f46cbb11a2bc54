"""The broken variants are patches: each applies to the current solution, and the applier is strict.

tests/broken/<exercise>/<name>.patch holds one mistake as a unified diff against
solutions/<exercise>/<module>.py (see tests/broken/README.md); tests/kit.py
applies it, in Python, when the kit check runs.
"""

from __future__ import annotations

import ast
import difflib
import random

import pytest

from kit import (
    BROKEN,
    EXERCISES,
    BrokenVariant,
    PatchError,
    apply_patch,
    broken_variants,
    exercise_names,
    parse_patch,
    relative,
    solution_of,
)

VARIANTS = broken_variants()


def graded_test_names(exercise: str) -> set[str]:
    names = set()
    for path in (EXERCISES / exercise).glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.exercise}/{v.name}")
def test_patch_applies_to_the_current_solution(variant: BrokenVariant):
    solution = variant.solution.read_text(encoding="utf-8")
    broken = variant.source()  # raises PatchError when a hunk no longer applies
    assert broken != solution, f"{relative(variant.path)} changes nothing"
    compile(broken, f"{relative(variant.path)} applied to {relative(variant.solution)}", "exec")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.exercise}/{v.name}")
def test_patch_header_names_the_mistake_and_existing_tests(variant: BrokenVariant):
    where = relative(variant.path)
    assert variant.mistake, f"{where}: the header's first line must name the mistake"
    assert not variant.mistake.startswith("CAUGHT_BY:"), f"{where}: the first line must name the mistake"
    assert variant.caught_by, f"{where}: the header has no 'CAUGHT_BY: test_name, ...' line"
    module = variant.solution.name
    assert variant.patch.labels == (f"a/{module}", f"b/{module}"), (
        f"{where}: the diff is labelled {variant.patch.labels}; want a/{module} and b/{module}"
    )
    unknown = sorted(set(variant.caught_by) - graded_test_names(variant.exercise))
    assert not unknown, f"{where}: CAUGHT_BY names tests that exercises/{variant.exercise} does not have: {unknown}"


def test_the_variants_are_patches_only():
    leftovers = [
        relative(path) for path in BROKEN.rglob("*")
        if path.is_file() and path.suffix not in (".patch", ".md") and "__pycache__" not in path.parts
    ]
    assert not leftovers, f"tests/broken holds files the kit check ignores: {leftovers}"


# --- The applier ---------------------------------------------------------------

ORIGINAL = "".join(f"line {n}\n" for n in range(1, 31))


def write_patch(tmp_path, body: str, header: str = "A mistake.\nCAUGHT_BY: test_a, test_b\n"):
    path = tmp_path / "mistake.patch"
    path.write_text(header + "--- a/module.py\n+++ b/module.py\n" + body, encoding="utf-8")
    return parse_patch(path)


TWO_HUNKS = """\
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
@@ -20,3 +20,4 @@
 line 20
 line 21
+an added line
 line 22
"""


def test_header(tmp_path):
    patch = write_patch(tmp_path, TWO_HUNKS, header="The mistake.\nMore words.\nCAUGHT_BY: test_a test_b,test_c\n\n")
    assert patch.labels == ("a/module.py", "b/module.py")
    assert patch.mistake == "The mistake."
    assert patch.caught_by == ["test_a", "test_b", "test_c"]
    assert [hunk.line for hunk in patch.hunks] == [2, 20]


def test_applies_hunks(tmp_path):
    patched = apply_patch(write_patch(tmp_path, TWO_HUNKS), ORIGINAL, "module.py")
    expected = ORIGINAL.replace("line 3\n", "line three\n").replace("line 22\n", "an added line\nline 22\n")
    assert patched == expected


def test_hunks_follow_lines_added_or_removed_above_them(tmp_path):
    moved = "a new first line\n" + ORIGINAL.replace("line 10\n", "")
    patched = apply_patch(write_patch(tmp_path, TWO_HUNKS), moved, "module.py")
    assert patched == moved.replace("line 3\n", "line three\n").replace("line 22\n", "an added line\nline 22\n")


@pytest.mark.parametrize("changed", ["line 21\n", "line 22\n", "line 20\n"])
def test_rejects_a_hunk_whose_context_does_not_match(tmp_path, changed):
    patch = write_patch(tmp_path, TWO_HUNKS)
    original = ORIGINAL.replace(changed, changed.replace("line", "LINE"))
    with pytest.raises(PatchError) as error:
        apply_patch(patch, original, "solutions/00_x/module.py")
    assert str(error.value) == (
        f"{patch.path}: hunk 2 (line 20) no longer applies to solutions/00_x/module.py; update the patch"
    )


def test_rejects_a_hunk_whose_removed_line_does_not_match(tmp_path):
    patch = write_patch(tmp_path, TWO_HUNKS)
    with pytest.raises(PatchError, match=r"hunk 1 \(line 2\) no longer applies"):
        apply_patch(patch, ORIGINAL.replace("line 3\n", "line 3 \n"), "module.py")


def test_rejects_a_hunk_that_only_matches_above_the_previous_one(tmp_path):
    body = "@@ -20,1 +20,1 @@\n-line 20\n+twenty\n@@ -25,1 +25,1 @@\n-line 5\n+five\n"
    with pytest.raises(PatchError, match=r"hunk 2 \(line 25\) no longer applies"):
        apply_patch(write_patch(tmp_path, body), ORIGINAL, "module.py")


def test_a_real_patch_whose_solution_changed_is_rejected_with_its_name():
    variant = VARIANTS[0]
    hunk = variant.patch.hunks[0]
    solution = variant.solution.read_text(encoding="utf-8")
    # Change the first line the hunk expects, wherever it is.
    target = next(line for line in hunk.old if line.strip())
    edited = solution.replace(target, target.rstrip("\n") + "  # edited\n")
    with pytest.raises(PatchError) as error:
        apply_patch(variant.patch, edited, relative(variant.solution))
    assert str(error.value) == (
        f"{relative(variant.path)}: hunk {hunk.number} (line {hunk.line}) no longer applies to "
        f"{relative(variant.solution)}; update the patch"
    )


@pytest.mark.parametrize(
    "body, complaint",
    [
        ("@@ -2,3 +2,3 @@\n line 2\n-line 3\n+line three\n", r"announces -3 \+3 lines but holds -2 \+2"),
        ("@@ -2,1 +2,1 @@\n-line 2\n+two\n?oops\n", r"expected a hunk"),
        ("line 2\n", r"expected a hunk"),
        ("", r"no hunks"),
    ],
)
def test_rejects_a_malformed_diff(tmp_path, body, complaint):
    with pytest.raises(PatchError, match=complaint):
        write_patch(tmp_path, body)


def test_rejects_a_header_line_that_looks_like_a_diff(tmp_path):
    with pytest.raises(PatchError, match="taken for the start of the diff"):
        write_patch(tmp_path, TWO_HUNKS, header="diff of something\nCAUGHT_BY: test_a\n")


def test_an_empty_context_line_may_have_lost_its_space(tmp_path):
    original = "one\n\nthree\n"
    body = "@@ -1,3 +1,3 @@\n one\n\n-three\n+THREE\n"
    assert apply_patch(write_patch(tmp_path, body), original, "module.py") == "one\n\nTHREE\n"


def test_a_file_without_a_final_newline(tmp_path):
    original = "one\ntwo"
    body = "@@ -1,2 +1,2 @@\n one\n-two\n\\ No newline at end of file\n+TWO\n\\ No newline at end of file\n"
    assert apply_patch(write_patch(tmp_path, body), original, "module.py") == "one\nTWO"


@pytest.mark.parametrize("seed", range(40))
def test_round_trips_what_difflib_writes(tmp_path, seed):
    """Random edits of a solution, written by difflib.unified_diff, apply back exactly."""
    rng = random.Random(seed)
    exercises = exercise_names()
    solution = solution_of(exercises[seed % len(exercises)])
    original = solution.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = list(original)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(edited))
        action = rng.choice(["replace", "insert", "delete"])
        if action == "replace":
            edited[at] = f"# replaced {rng.random()}\n"
        elif action == "insert":
            edited.insert(at, f"# inserted {rng.random()}\n")
        elif len(edited) > 1:
            del edited[at]
    context = rng.choice([0, 1, 3])
    diff = "".join(difflib.unified_diff(original, edited, "a/module.py", "b/module.py", n=context))
    path = tmp_path / "random.patch"
    path.write_text("Random edits.\nCAUGHT_BY: test_x\n" + diff, encoding="utf-8")
    if not diff:
        return
    assert apply_patch(parse_patch(path), "".join(original), "module.py") == "".join(edited)
