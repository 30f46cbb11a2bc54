"""Several processes appending multi-line records to one file, under one process lock."""

from __future__ import annotations

import multiprocessing


def append_record(path: str, lines: list[str], lock) -> None:
    """Append ``lines`` to ``path`` as one record, holding ``lock`` the whole time.

    Each line is written and flushed on its own, as a logger does, so without
    the lock another process's lines could land in the middle of the record.

    >>> append_record("/tmp/log.txt", ["begin", "end"], multiprocessing.Lock())
    """
    with lock, open(path, "a", encoding="utf-8") as file:  # the lock is released on any error
        for line in lines:
            file.write(line if line.endswith("\n") else line + "\n")
            file.flush()


def _write_records(path: str, writer: int, records: int, lock) -> None:
    """One child's work (module level, so that it pickles under spawn)."""
    for r in range(records):
        append_record(path, [f"begin {writer} {r}", f"body {writer} {r}", f"end {writer} {r}"], lock)


def run_writers(path: str, n_processes: int, records_per_process: int, lock=None) -> None:
    """Start ``n_processes`` writers sharing one lock; return when all ended.

    Raises ``RuntimeError`` naming the writers that failed.

    >>> run_writers("/tmp/log.txt", 4, 10)   # 4 * 10 records of 3 lines each
    """
    if lock is None:
        lock = multiprocessing.Lock()
    writers = [
        multiprocessing.Process(
            target=_write_records, args=(path, i, records_per_process, lock), name=f"writer-{i}"
        )
        for i in range(n_processes)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    failed = [f"{w.name} (exit code {w.exitcode})" for w in writers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n_processes} writers failed: {', '.join(failed)}")
