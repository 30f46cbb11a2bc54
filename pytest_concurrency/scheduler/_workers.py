"""OS threads kept between runs for the callables of ``schedule.run``.

Starting an OS thread costs about as much as a whole short run (two threads
of three increments), and Hypothesis asks for hundreds of runs a test.  So
the threads that run the callables are kept: after a run each one waits on
its gate for the next.  A reused thread must look fresh to user code, so
between runs its ``threading.local`` values are dropped (CPython keeps them
in the thread state's dict, under keys ``thread.local.<address>``, which is
what a thread's end clears too) and each callable runs in a new, empty
``contextvars`` context.  :func:`_can_reuse` checks on the running
interpreter that dropping those keys really empties a ``threading.local``;
where it does not, every worker serves one callable and ends, as a fresh
thread would.

Threads that the callables start themselves (``threading.Thread.start``) are
not pooled: their ending is what ``join`` and interpreter exit wait for.

All of a run's threads share one CPU (Linux): only one of them runs at a
time anyway, and a hand-off between threads on two CPUs had to wake the
other, idle one, which on the virtual machines CI runs on cost 80 to 150 us
where a hand-off on one CPU costs 10.  The thread that calls ``run`` is
pinned to the CPU it is on, for the length of the run only (:func:`pin_caller`),
and each kept thread moves there as it takes a callable (:func:`pin`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from . import _real

MAX_IDLE = 8  # more than any scenario's callables; extra ones end


class Worker:
    """One kept OS thread: it runs a job each time its gate opens."""

    __slots__ = ("gate", "ident", "job", "cpu", "_tstate_dict")

    def __init__(self) -> None:
        self.gate = _real.allocate_lock()
        self.gate.acquire()
        self.ident: int | None = None
        self.job: Callable[[], Any] | None = None
        self.cpu: int | None = None  # the CPU it is pinned to
        self._tstate_dict: dict[Any, Any] | None = None

    def forget_thread_locals(self) -> None:
        """Drop this thread's ``threading.local`` values, as a thread's end does."""
        state = self._tstate_dict
        if state:
            for key in [k for k in state if type(k) is str and k.startswith("thread.local.")]:
                del state[key]


_idle: list[Worker] = []
_reuse: bool | None = None  # decided by the first worker


def take() -> Worker:
    """An idle worker, or a new one; its gate is closed and its job unset."""
    if _idle:
        return _idle.pop()
    worker = Worker()
    started = _real.allocate_lock()
    started.acquire()
    _real.start_new_thread(_serve, (worker, started))
    started.acquire()  # its ident is needed before its first turn
    return worker


def give_back(worker: Worker) -> bool:
    """Called by the worker itself once its job is done: True if it is kept."""
    if _reuse and len(_idle) < MAX_IDLE:
        worker.forget_thread_locals()
        _idle.append(worker)
        return True
    return False


def reusable() -> bool:
    """Can a kept thread be made fresh for another callable (see :func:`_can_reuse`)?"""
    return bool(_reuse)


def _serve(worker: Worker, started: Any) -> None:
    global _reuse
    worker.ident = _real.get_ident()
    worker._tstate_dict = _thread_state_dict()
    if _reuse is None:
        _reuse = _can_reuse(worker)
    started.release()
    while True:
        worker.gate.acquire()
        job, worker.job = worker.job, None
        if job is None:
            return
        if not job():
            return


def _thread_state_dict() -> dict[Any, Any] | None:
    try:
        import ctypes

        get_dict = ctypes.pythonapi.PyThreadState_GetDict
        get_dict.restype = ctypes.py_object
        get_dict.argtypes = []
        state = get_dict()
        # The reference is borrowed, but ctypes takes a py_object result as a new
        # one and gives it to us: take one for real, or the dict is freed twice.
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(state))
    except Exception:  # noqa: BLE001 - no ctypes, or another interpreter: no reuse
        return None
    return state if isinstance(state, dict) else None


def _can_reuse(worker: Worker) -> bool:
    """Does dropping the ``thread.local.*`` keys empty a ``threading.local`` here?"""
    import _thread

    probe = _thread._local()
    probe.value = 1
    worker.forget_thread_locals()
    return worker._tstate_dict is not None and not hasattr(probe, "value")


_pinning: bool | None = None  # decided on first use: Linux, more than one CPU allowed
_current_cpu: Callable[[], int] | None = None


def _can_pin() -> bool:
    global _pinning, _current_cpu
    if _pinning is None:
        _pinning = False
        try:
            import ctypes

            if len(os.sched_getaffinity(0)) > 1:
                _current_cpu = ctypes.CDLL(None, use_errno=True).sched_getcpu  # glibc's, from the vDSO
                _pinning = _current_cpu() >= 0
        except (AttributeError, OSError):  # not Linux or glibc, or not allowed
            _pinning = False
    return _pinning


def pin(worker: Worker, cpu: int | None) -> None:
    """Called by the worker itself: run on ``cpu`` (None: leave it where it is)."""
    if cpu is not None and worker.cpu != cpu:
        with suppress(OSError):
            os.sched_setaffinity(0, {cpu})  # 0: this thread, on Linux
            worker.cpu = cpu


def pin_caller() -> tuple[int | None, set[int] | None]:
    """Keep the calling thread on the CPU it is on: (that CPU, the CPUs to give back)."""
    if _can_pin():
        try:
            cpu = _current_cpu()  # type: ignore[misc]
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {cpu})
        except OSError:
            return None, None
        return cpu, before
    return None, None


def unpin_caller(before: set[int] | None) -> None:
    """Give the calling thread back the CPUs :func:`pin_caller` took."""
    if before is not None:
        os.sched_setaffinity(0, before)


def _forget_all_after_fork() -> None:
    # Only the forking thread goes on in the child: the kept threads are gone.
    _idle.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_after_fork)
