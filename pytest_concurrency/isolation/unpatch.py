"""Undoing ``gevent.monkey``'s patches: a test that patched the pytest process is caught, and the
process is given back plain threads, sockets and ``time.sleep``.
"""

from __future__ import annotations

import sys
from typing import Any


def gevent_patched() -> bool:
    """Whether ``gevent.monkey`` patched anything in this interpreter (never imports gevent)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_anything_patched())


def unpatch_gevent() -> list[str]:
    """Undo ``gevent.monkey``'s patches, as far as that goes; the names of the modules it patched.

    Every attribute gevent replaced is put back (gevent keeps the originals),
    and the main thread, which ``patch_thread`` re-keys under the greenlet's id
    and gives a gevent lock, is a plain thread again: threads, sockets,
    ``time.sleep`` and the interpreter's exit work as before.  Objects created
    while patched (a gevent lock someone kept) stay what they are.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_anything_patched():
        return []
    saved: dict[str, dict[str, Any]] = monkey.saved
    names = sorted(name for name in saved if name in sys.modules)
    real_get_ident = saved.get("_thread", {}).get("get_ident") or saved.get("threading", {}).get("get_ident")
    real_allocate_lock = saved.get("_thread", {}).get("allocate_lock")
    for module_name, attributes in list(saved.items()):
        module = sys.modules.get(module_name)
        if module is not None:
            for attribute, original in attributes.items():
                setattr(module, attribute, original)
    saved.clear()
    threading = sys.modules.get("threading")
    if threading is not None and real_get_ident is not None:
        main = threading.main_thread()
        real_tstate_lock = main.__dict__.pop("_gevent_real_tstate_lock", None)
        if real_tstate_lock is not None:
            main._tstate_lock = real_tstate_lock
        main.__dict__.pop("_greenlet", None)
        ident = real_get_ident()
        if main._ident != ident and main._ident in threading._active:
            threading._active[ident] = threading._active.pop(main._ident)
            main._ident = ident
        threading._dangling.add(main)
        if real_allocate_lock is not None:
            threading._active_limbo_lock = real_allocate_lock()  # type: ignore[attr-defined]
            futures = sys.modules.get("concurrent.futures.thread")
            if futures is not None and hasattr(futures, "_global_shutdown_lock"):
                futures._global_shutdown_lock = real_allocate_lock()  # type: ignore[attr-defined]
    logging = sys.modules.get("logging")
    if logging is not None:
        for ref in list(getattr(logging, "_handlerList", [])):
            handler = ref()
            if handler is not None and type(handler.lock).__module__.startswith("gevent"):
                handler.createLock()
    return names

