"""parallel_map calls fn in the parent, one item after the other."""

from __future__ import annotations

import multiprocessing
import queue

CAUGHT_BY = ['test_parallel_map_returns_results_in_order_computed_by_workers', 'test_parallel_map_really_runs_tasks_at_the_same_time']


def parallel_map(fn, items, processes: int | None = None) -> list:
    """``[fn(item) for item in items]``, computed by a pool of ``processes`` workers.

    Results come in the order of ``items``; the first exception a task raised
    is raised here.  The pool is closed (or terminated) and joined either way.

    >>> parallel_map(abs, [-1, -2, 3], processes=2)
    [1, 2, 3]
    """
    pool = multiprocessing.Pool(processes)
    try:
        results = [fn(item) for item in items]
        pool.close()
        return results
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def submit_all(fn, items, processes: int, callback) -> list:
    """``apply_async(fn, (item,))`` for every item; ``callback(result)`` runs in this process.

    Returns the results in the order of ``items`` once the pool was closed and
    joined (so every callback has run); re-raises the first task's exception.

    >>> seen = []
    >>> submit_all(abs, [-1, -2], 2, seen.append)
    [1, 2]
    """
    pool = multiprocessing.Pool(processes)
    try:
        pending = [pool.apply_async(fn, (item,), callback=callback) for item in items]
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()  # after close(): every task ran and every callback was called
    return [result.get() for result in pending]


def first_result(fns, processes: int, timeout: float):
    """Run every zero-argument callable of ``fns``; return what the first one to finish returned.

    The other tasks are stopped (``terminate``).  If the first to finish
    raised, that exception is raised; if none finished within ``timeout``
    seconds, ``TimeoutError``.

    >>> first_result([str, int], 2, timeout=5) in ("", 0)
    True
    """
    fns = list(fns)
    if not fns:
        raise ValueError("first_result needs at least one function")
    finished: queue.Queue = queue.Queue()  # filled by the pool's result thread, in this process
    pool = multiprocessing.Pool(processes)
    try:
        for fn in fns:
            pool.apply_async(
                fn,
                callback=lambda value: finished.put((True, value)),
                error_callback=lambda error: finished.put((False, error)),
            )
        try:
            succeeded, outcome = finished.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"none of {len(fns)} tasks finished within {timeout} s") from None
    finally:
        pool.terminate()  # the others may run for ever: stop them, don't wait
        pool.join()
    if not succeeded:
        raise outcome
    return outcome
