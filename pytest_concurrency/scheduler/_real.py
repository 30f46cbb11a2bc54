"""The real primitives, captured once when the scheduler is first imported.

The scheduler's own machinery (the baton each thread waits on, the watchdog)
must never go through a patched ``threading`` or ``time``: whatever another
part of the plugin or the scheduler itself installs later, these stay the
interpreter's own.
"""

from __future__ import annotations

import _thread
import sys
import time

allocate_lock = _thread.allocate_lock
get_ident = _thread.get_ident
start_new_thread = _thread.start_new_thread
start_joinable_thread = getattr(_thread, "start_joinable_thread", None)

monotonic = time.monotonic
wall_time = time.time
perf_counter = time.perf_counter

HAS_MONITORING = sys.version_info >= (3, 12)
