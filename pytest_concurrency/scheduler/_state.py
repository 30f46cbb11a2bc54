"""Who is controlled right now: the one piece of state every part consults.

``controlled`` maps the ident of each thread that runs under the active
scheduler to its record.  The patched primitives look the calling thread up
here on every call and behave as the real ones for any thread not in it, so
pytest, fixtures' threads and other tests never see the controlled versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._engine import Scheduler, ThreadRecord

controlled: dict[int, ThreadRecord] = {}
active: list[Scheduler] = []  # at most one: runs never overlap

# What install() found and will restore; the real-mode primitives are built from these.
found: dict[str, Any] = {}
