"""Exercise 10: processes. Read README.md in this folder first.

Everything a child process needs must be importable: define the functions
you hand to `multiprocessing.Process` at module level, not inside another
function (the `spawn` start method pickles them by name).
"""

from __future__ import annotations

import multiprocessing

_README = "exercises/10_process_basics/README.md"


class ClockProcess(multiprocessing.Process):
    def __init__(self, interval: float, count: int, queue) -> None:
        raise NotImplementedError(f"ClockProcess.__init__: write it (see {_README})")

    def run(self) -> None:
        raise NotImplementedError(f"ClockProcess.run: write it (see {_README})")


def run_in_process(fn, *args, timeout: float | None = None):
    raise NotImplementedError(f"run_in_process: write it (see {_README})")
