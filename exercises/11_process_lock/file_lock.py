"""Exercise 11: one file, many processes, one lock. Read README.md in this folder first.

The function each child runs must be defined at module level (the `spawn`
start method pickles it by name).
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (you will need it)

_README = "exercises/11_process_lock/README.md"


def append_record(path: str, lines: list[str], lock) -> None:
    raise NotImplementedError(f"append_record: write it (see {_README})")


def run_writers(path: str, n_processes: int, records_per_process: int, lock=None) -> None:
    raise NotImplementedError(f"run_writers: write it (see {_README})")
