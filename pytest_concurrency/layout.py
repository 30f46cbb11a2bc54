"""Where things are: exercise folders, their READMEs, and the names graders see.

An exercise is a folder named ``NN_name`` (two digits, an underscore, a name)
that holds its README, its module and its tests.  Every other part asks this
module, so the naming rule lives in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

EXERCISE_FOLDER = re.compile(r"^\d\d_[a-z0-9_]+$")


def exercise_folder(path: Path) -> Path | None:
    """The nearest enclosing exercise folder of ``path``, or None.

    >>> exercise_folder(Path("exercises/07_thread_pool/test_thread_pool.py")).name
    '07_thread_pool'
    """
    for candidate in (path, *path.parents):
        if EXERCISE_FOLDER.match(candidate.name):
            return candidate
    return None


# path of a test file -> whether it is inside an exercise folder (pathlib is slow, per test).
_in_exercise: dict[object, bool] = {}


def in_exercise_folder(path: object) -> bool:
    """Whether the test file ``path`` is inside an ``NN_name`` folder: the one answer to
    "is this an exercise test?" (cached per path: the parts ask for every test).

    >>> in_exercise_folder(Path("exercises/07_thread_pool/test_thread_pool.py"))
    True
    """
    found = _in_exercise.get(path)
    if found is None:
        found = _in_exercise[path] = exercise_folder(Path(str(path))) is not None
    return found


def exercise_name(path: Path) -> str | None:
    folder = exercise_folder(path)
    return folder.name if folder else None


def graded_name(path: Path, nodeid: str) -> str:
    """The name a grader sees: ``07_thread_pool/test_thread_pool.py::test_x``."""
    folder = exercise_folder(path)
    test_part = nodeid.split("::", 1)[1] if "::" in nodeid else nodeid
    if folder is None:
        return nodeid
    relative = path.relative_to(folder.parent).as_posix()
    return f"{relative}::{test_part}"


def first_hint(readme: Path) -> str | None:
    """The first paragraph of the README's first hint (``<summary>Hint 1…``)."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"<summary>\s*Hint 1[^<]*</summary>\s*(.+?)(?:\n\s*\n|</details>)", text, re.S)
    if not match:
        return None
    return " ".join(match.group(1).split())
