"""Processes filling and counting into one shared ``multiprocessing.Array``."""

from __future__ import annotations

import multiprocessing
from collections import Counter


def _slices(n: int, parts: int) -> list[range]:
    """``range(n)`` cut into ``parts`` contiguous pieces whose sizes differ by at most one."""
    size, extra = divmod(n, parts)
    pieces, start = [], 0
    for k in range(parts):
        stop = start + size + (1 if k < extra else 0)
        pieces.append(range(start, stop))
        start = stop
    return pieces


def _run_all(target, argument_lists: list[tuple]) -> None:
    """One process per argument tuple; start them all, join them all, report failures."""
    processes = [multiprocessing.Process(target=target, args=args) for args in argument_lists]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(processes)} processes failed (exit codes {failed})")


def _fill_slice(arr, start: int, stop: int) -> None:
    for i in range(start, stop):
        arr[i] = i + 100  # each process owns its slice: no two write the same cell


def fill(arr, n_processes: int) -> None:
    """Set ``arr[i] = i + 100`` for every i, the indexes split across ``n_processes`` processes.

    >>> arr = multiprocessing.Array("i", 5)
    >>> fill(arr, 2); arr[:]
    [100, 101, 102, 103, 104]
    """
    _run_all(_fill_slice, [(arr, s.start, s.stop) for s in _slices(len(arr), n_processes)])


def _count_values(arr, values: list[int]) -> None:
    # Count locally, then add each total under the array's lock: `arr[v] += c` is
    # a read and a write, and another process may write in between.
    for value, count in Counter(values).items():
        with arr.get_lock():
            arr[value] += count


def count_into(arr, data: list[int], n_processes: int) -> None:
    """Add 1 to ``arr[v]`` for each v in ``data``, the data split across ``n_processes`` processes.

    >>> arr = multiprocessing.Array("i", 3)
    >>> count_into(arr, [0, 2, 2, 2], 2); arr[:]
    [1, 0, 3]
    """
    data = list(data)
    _run_all(_count_values, [(arr, data[s.start:s.stop]) for s in _slices(len(data), n_processes)])
