"""Linearizability: does a structure shared between threads behave like some sequential order?

Declare the operations and a sequential model; Hypothesis draws small
scenarios (two or three threads of one to three calls, a set-up part and an
after part), each runs under a drawn schedule, and the history of calls and
results is searched for a sequential order that the model explains
(:mod:`.checker`).  See ``docs/linearizability.md``.
"""

from __future__ import annotations

from .checker import BLOCKS, Call, Raises, Verdict, check
from .scenario import NotLinearizable, Operation, Scenario, scenarios

__all__ = [
    "BLOCKS", "Call", "NotLinearizable", "Operation", "Raises", "Scenario", "Verdict", "check", "scenarios",
]  # fmt: skip
