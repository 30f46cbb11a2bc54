"""Exercise 13: processes sharing one multiprocessing.Array. Read README.md in this folder first.

The functions your processes run must be defined at module level (the
`spawn` start method pickles them by name).
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (you will need it)

_README = "exercises/13_shared_array/README.md"


def fill(arr, n_processes: int) -> None:
    raise NotImplementedError(f"fill: write it (see {_README})")


def count_into(arr, data: list[int], n_processes: int) -> None:
    raise NotImplementedError(f"count_into: write it (see {_README})")
