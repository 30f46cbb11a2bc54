"""Helpers of the kit check: run one exercise's graded tests against a tree, read the grade."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pytest_concurrency.layout import EXERCISE_FOLDER

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
SOLUTIONS = ROOT / "solutions"
BROKEN = Path(__file__).resolve().parent / "broken"


def exercise_names() -> list[str]:
    return sorted(p.name for p in EXERCISES.iterdir() if EXERCISE_FOLDER.match(p.name))


def module_of(exercise: str) -> str:
    """The implementation module of an exercise: its one .py file that is not a test."""
    modules = [
        p.stem for p in (EXERCISES / exercise).glob("*.py")
        if not p.name.startswith(("test_", "conftest"))
    ]
    assert len(modules) == 1, f"{exercise}: expected one module beside the tests, found {modules}"
    return modules[0]


def solution_of(exercise: str) -> Path:
    return SOLUTIONS / exercise / f"{module_of(exercise)}.py"


def relative(path: Path) -> str:
    """``path`` as written in messages: relative to the repository when it is inside."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


# --- Broken variants as patches ---------------------------------------------------
#
# tests/broken/<exercise>/<name>.patch is a header of free text, then a unified diff
# (``diff -u a/<module>.py b/<module>.py``) against the exercise's CURRENT solution:
#
#     deposit() changes the balance without the lock: concurrent deposits are lost.
#     CAUGHT_BY: test_no_deposit_is_lost
#
#     --- a/bank.py
#     +++ b/bank.py
#     @@ -40,8 +40,7 @@
#     ...
#
# The header's first line names the mistake; its ``CAUGHT_BY:`` line names the
# graded tests that must fail (comma- or space-separated); other header lines are
# free text. ``git apply`` and ``patch`` skip such a header too. The patch is
# applied here, in Python, so that nothing depends on the ``patch`` program: each
# hunk's context and removed lines must match the solution exactly (no fuzz), at
# the line the hunk names or, when lines were added or removed above it, at the
# nearest place below the previous hunk.


class PatchError(Exception):
    """A patch is malformed, or a hunk of it no longer applies to the solution."""


@dataclass(frozen=True)
class Hunk:
    """One ``@@ -l,n +l,n @@`` block of a unified diff."""

    number: int  # 1-based, in the order of the patch file
    line: int  # the 1-based line of the original file the hunk names (-l)
    old: tuple[str, ...]  # context and removed lines: what the original must hold
    new: tuple[str, ...]  # context and added lines: what replaces them


@dataclass(frozen=True)
class Patch:
    path: Path
    header: tuple[str, ...]
    labels: tuple[str, str]  # the names after "--- " and "+++ ", without a timestamp
    hunks: tuple[Hunk, ...]

    @property
    def mistake(self) -> str:
        return next((line.strip() for line in self.header if line.strip()), "")

    @property
    def caught_by(self) -> list[str]:
        for line in self.header:
            if line.startswith("CAUGHT_BY:"):
                return [name for name in re.split(r"[\s,]+", line[len("CAUGHT_BY:"):]) if name]
        return []


_HUNK_HEADER = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
# Lines a header must not start with: patch(1) or git apply would take them for a diff.
_DIFF_STARTS = ("--- ", "+++ ", "@@ ", "*** ", "diff ", "Index:", "index ")


def parse_patch(path: Path) -> Patch:
    """Read a ``.patch`` file: the header, then the hunks of a one-file unified diff."""
    where = relative(path)
    lines = _lines(path.read_text(encoding="utf-8"))
    first = next((i for i, line in enumerate(lines) if line.startswith(_DIFF_STARTS)), None)
    if first is None:
        raise PatchError(f"{where}: no diff after the header ('--- a/<module>.py' and so on)")
    has_plus = first + 1 < len(lines) and lines[first + 1].startswith("+++ ")
    if not lines[first].startswith("--- ") or not has_plus:
        raise PatchError(
            f"{where}, line {first + 1}: {lines[first]!r} is taken for the start of the diff, "
            "which must begin with a '--- a/<module>.py' then a '+++ b/<module>.py' line "
            "(a header line must not look like a diff line)"
        )
    header = tuple(line.rstrip("\r\n") for line in lines[:first])
    hunks: list[Hunk] = []
    i = first + 2
    while i < len(lines):
        match = _HUNK_HEADER.match(lines[i])
        if match is None:
            raise PatchError(f"{where}, line {i + 1}: expected a hunk ('@@ -l,n +l,n @@'), got {lines[i]!r}")
        number = len(hunks) + 1
        old_count = 1 if match[2] is None else int(match[2])
        new_count = 1 if match[4] is None else int(match[4])
        old: list[str] = []
        new: list[str] = []
        previous = " "
        i += 1
        while i < len(lines) and (
            len(old) < old_count or len(new) < new_count or lines[i].startswith("\\")
        ):
            kind, text = lines[i][:1], lines[i][1:]
            if lines[i] in ("\n", "\r\n"):  # an empty context line whose space an editor trimmed
                kind, text = " ", lines[i]
            if kind == "\\":  # "\ No newline at end of file": about the line before
                for side in {"-": (old,), "+": (new,), " ": (old, new)}[previous]:
                    side[-1] = side[-1].rstrip("\r\n")
            elif kind in (" ", "-", "+"):
                if kind != "+":
                    old.append(text)
                if kind != "-":
                    new.append(text)
                previous = kind
            else:
                raise PatchError(f"{where}, hunk {number}, line {i + 1}: not a diff line: {lines[i]!r}")
            i += 1
        if (len(old), len(new)) != (old_count, new_count):
            raise PatchError(
                f"{where}: hunk {number} announces -{old_count} +{new_count} lines but holds "
                f"-{len(old)} +{len(new)}: the patch was cut short or edited by hand"
            )
        hunks.append(Hunk(number, int(match[1]), tuple(old), tuple(new)))
    if not hunks:
        raise PatchError(f"{where}: the diff has no hunks")
    labels = tuple(line[4:].rstrip("\r\n").split("\t")[0] for line in lines[first:first + 2])
    return Patch(path, header, labels, tuple(hunks))


def apply_patch(patch: Patch, original: str, original_name: str) -> str:
    """``original`` with ``patch`` applied; PatchError names the hunk that does not match."""
    lines = _lines(original)
    result: list[str] = []
    done = 0  # lines[:done] are already in result
    offset = 0  # where the previous hunk matched, against where it said it would
    for hunk in patch.hunks:
        # "-l,0" (nothing removed) names the line *after which* to insert.
        expected = hunk.line - (1 if hunk.old else 0) + offset
        at = _find(lines, hunk.old, expected, done)
        if at is None:
            raise PatchError(
                f"{relative(patch.path)}: hunk {hunk.number} (line {hunk.line}) no longer applies "
                f"to {original_name}; update the patch"
            )
        result += lines[done:at]
        result += hunk.new
        done = at + len(hunk.old)
        offset = at - (hunk.line - (1 if hunk.old else 0))
    result += lines[done:]
    return "".join(result)


def _lines(text: str) -> list[str]:
    """``text`` cut after each newline, as diff does (str.splitlines also cuts at \\f and more)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _find(lines: list[str], old: tuple[str, ...], expected: int, lowest: int) -> int | None:
    """The index nearest ``expected``, not below ``lowest``, where ``lines`` hold ``old``."""
    size = len(old)
    highest = len(lines) - size
    for distance in range(max(expected - lowest, highest - expected) + 1):
        for at in (expected - distance, expected + distance):
            if lowest <= at <= highest and tuple(lines[at:at + size]) == old:
                return at
    return None


@dataclass(frozen=True)
class BrokenVariant:
    """A deliberately broken implementation: ``tests/broken/<exercise>/<name>.patch``,
    one mistake applied to the exercise's current solution."""

    exercise: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @cached_property
    def patch(self) -> Patch:
        return parse_patch(self.path)

    @property
    def mistake(self) -> str:
        return self.patch.mistake

    @property
    def caught_by(self) -> list[str]:
        """Test names of the header's ``CAUGHT_BY:`` line: each must fail."""
        return self.patch.caught_by

    @property
    def solution(self) -> Path:
        return solution_of(self.exercise)

    def source(self) -> str:
        """The broken module: the patch applied to the current solution."""
        return apply_patch(
            self.patch, self.solution.read_text(encoding="utf-8"), relative(self.solution)
        )


def broken_variants() -> list[BrokenVariant]:
    return [
        BrokenVariant(folder.name, path)
        for folder in sorted(BROKEN.iterdir()) if folder.is_dir()
        for path in sorted(folder.glob("*.patch"))
    ]


def mirror_with(tmp: Path, exercise: str, source: str) -> Path:
    """A tree mirroring exercises/ whose exercise holds ``source`` as its module."""
    target = tmp / "impl" / exercise
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{module_of(exercise)}.py").write_text(source, encoding="utf-8")
    return tmp / "impl"


def grade(exercise: str, impl: Path | None, tmp: Path, *extra: str, timeout: float = 600) -> dict:
    """Run the graded tests of ``exercise`` in a fresh pytest; return Gradescope's JSON."""
    out = tmp / f"grade-{exercise}.json"
    command = [
        sys.executable, "-m", "pytest", f"exercises/{exercise}", "-q", "-p", "no:cacheprovider",
        "--grade-json", str(out), *extra,
    ]
    if impl is not None:
        command += ["--impl", str(impl)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert out.exists(), f"no grade written; pytest said:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = json.loads(out.read_text(encoding="utf-8"))
    result["pytest_output"] = proc.stdout + proc.stderr
    result["exit_code"] = proc.returncode
    return result


def short(test_name: str) -> str:
    """``07_x/test_x.py::test_y[1]`` -> ``test_y``."""
    return test_name.split("::")[-1].split("[")[0]


# Read once, at import: the pytester tests run with CI unset (conftest.py).
_IN_CI = bool(os.environ.get("CI"))


def need_tools(*names: str) -> None:
    """Skip the calling test when a program it drives is missing; under CI, fail.

    ``make test`` installs them (scripts/ensure-test-tools): in CI a skip would
    be a check that silently stopped checking.
    """
    import shutil

    import pytest

    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    message = f"not installed: {', '.join(missing)} (make test installs them: scripts/ensure-test-tools)"
    if _IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
