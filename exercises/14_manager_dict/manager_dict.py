"""Exercise 14: a word count shared through a Manager. Read README.md in this folder first.

The function your processes run must be defined at module level (the
`spawn` start method pickles it by name).
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (you will need it)

_README = "exercises/14_manager_dict/README.md"


def word_count(chunks: list[str], processes: int) -> dict[str, int]:
    raise NotImplementedError(f"word_count: write it (see {_README})")
