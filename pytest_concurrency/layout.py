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


_HINT = re.compile(r"<summary>\s*Hint\s+(\d+)[^<]*</summary>(.*?)</details>", re.S)


def hints(readme: Path) -> dict[int, str]:
    """Every hint of the README (``<details><summary>Hint N</summary>…</details>``), by number,
    as written (Markdown, surrounding blank lines dropped); {} when the file cannot be read.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     readme = Path(tmp, "README.md")
    ...     _ = readme.write_text("<details><summary>Hint 2</summary>\\n\\nTake locks in order.\\n</details>")
    ...     hints(readme)
    {2: 'Take locks in order.'}
    """
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return {}
    found: dict[int, str] = {}
    for match in _HINT.finditer(text):
        found.setdefault(int(match.group(1)), match.group(2).strip())
    return dict(sorted(found.items()))


def hint_paragraph(readme: Path, number: int) -> str | None:
    """The first paragraph of hint ``number`` that is prose, not code, on one line (what the
    score table shows)."""
    text = hints(readme).get(number)
    if not text:
        return None
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return " ".join(prose[0].split()) if prose else None


def first_hint(readme: Path) -> str | None:
    """The first paragraph of the README's first hint (``<summary>Hint 1…``)."""
    return hint_paragraph(readme, 1)
