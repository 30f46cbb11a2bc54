"""Each process makes its own lock, so the lock excludes nobody."""

from __future__ import annotations

import multiprocessing

CAUGHT_BY = ['test_word_count_is_exact_under_heavy_duplication']


def _count_chunks(counts, lock, chunks: list[str]) -> None:
    """One process's share (module level, so that it pickles under spawn)."""
    lock = multiprocessing.Lock()
    for chunk in chunks:
        for word in chunk.split():
            with lock:
                counts[word] = counts.get(word, 0) + 1


def word_count(chunks: list[str], processes: int) -> dict[str, int]:
    """How often each (whitespace-separated) word occurs in ``chunks``, counted by ``processes`` processes.

    >>> word_count(["a b", "b"], 2)
    {'a': 1, 'b': 2}
    """
    chunks = list(chunks)
    with multiprocessing.Manager() as manager:  # shut down (and joined) on the way out
        counts = manager.dict()
        lock = manager.Lock()
        workers = [
            multiprocessing.Process(target=_count_chunks, args=(counts, lock, chunks[k::processes]))
            for k in range(processes)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        failed = [w.exitcode for w in workers if w.exitcode != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} of {processes} counting processes failed")
        return dict(counts)  # a plain copy: the proxy dies with the manager
