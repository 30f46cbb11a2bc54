"""Exercise 16: gevent's spawn, joinall and sleep(0). Read README.md in this folder first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent  # noqa: F401  (you will need it)

_README = "exercises/16_gevent_basics/README.md"


def run_without_yield(n_tasks: int, steps: int) -> list[tuple[int, int]]:
    raise NotImplementedError(f"run_without_yield: write it (see {_README})")


def run_with_yield(n_tasks: int, steps: int) -> list[tuple[int, int]]:
    raise NotImplementedError(f"run_with_yield: write it (see {_README})")


def gather(fns: list[Callable[[], Any]], timeout: float) -> list[Any]:
    raise NotImplementedError(f"gather: write it (see {_README})")
