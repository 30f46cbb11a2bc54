"""Exercise 02: timers and a debouncer. Read README.md in this folder first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_README = "exercises/02_timer/README.md"


def call_later(
    delay: float, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> threading.Timer:
    """Start and return a ``threading.Timer`` that calls ``fn(*args, **kwargs)`` in ``delay`` s."""
    raise NotImplementedError(f"call_later: write it (see {_README})")


class Debouncer:
    """Runs ``fn`` once, ``wait`` seconds after the last of a burst of calls, with its arguments."""

    def __init__(self, wait: float, fn: Callable[..., Any]) -> None:
        raise NotImplementedError(f"Debouncer.__init__: write it (see {_README})")

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"Debouncer.__call__: write it (see {_README})")

    def flush(self) -> None:
        raise NotImplementedError(f"Debouncer.flush: write it (see {_README})")

    def cancel(self) -> None:
        raise NotImplementedError(f"Debouncer.cancel: write it (see {_README})")
