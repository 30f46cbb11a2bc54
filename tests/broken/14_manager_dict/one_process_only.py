"""word_count ignores `processes` and counts everything in one child process."""

from __future__ import annotations

import multiprocessing
from collections import Counter

CAUGHT_BY = ['test_word_count_uses_n_processes_and_one_manager']


def _count_chunks(counts, lock, chunks: list[str]) -> None:
    """One process's share (module level, so that it pickles under spawn)."""
    local = Counter(word for chunk in chunks for word in chunk.split())
    # `counts[w] = counts.get(w, 0) + n` is two requests to the manager; another
    # process's request can come in between.  The manager's lock makes them one step.
    with lock:
        for word, n in local.items():
            counts[word] = counts.get(word, 0) + n


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
            multiprocessing.Process(target=_count_chunks, args=(counts, lock, chunks))
            for k in range(1)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        failed = [w.exitcode for w in workers if w.exitcode != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} of {processes} counting processes failed")
        return dict(counts)  # a plain copy: the proxy dies with the manager
