"""Helpers of the kit check: run one exercise's graded tests against a tree, read the grade."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class BrokenVariant:
    """A deliberately broken implementation: ``tests/broken/<exercise>/<name>.py``."""

    exercise: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def mistake(self) -> str:
        doc = ast.get_docstring(ast.parse(self.path.read_text(encoding="utf-8"))) or ""
        return doc.split("\n", 1)[0]

    @property
    def caught_by(self) -> list[str]:
        """Test names the variant declares in ``CAUGHT_BY = [...]``: each must fail."""
        for node in ast.parse(self.path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "CAUGHT_BY" for t in node.targets
            ):
                return list(ast.literal_eval(node.value))
        return []


def broken_variants() -> list[BrokenVariant]:
    return [
        BrokenVariant(folder.name, path)
        for folder in sorted(BROKEN.iterdir()) if folder.is_dir()
        for path in sorted(folder.glob("*.py"))
    ]


def mirror_with(tmp: Path, exercise: str, module_file: Path) -> Path:
    """A tree mirroring exercises/ whose exercise holds ``module_file`` as its module."""
    target = tmp / "impl" / exercise
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(module_file, target / f"{module_of(exercise)}.py")
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
