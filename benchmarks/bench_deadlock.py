"""Benchmark of deadlock detection in real runs (not a test: it prints a table).

    python benchmarks/bench_deadlock.py            # everything (about two minutes)
    python benchmarks/bench_deadlock.py --quick    # fewer repetitions
    python benchmarks/bench_deadlock.py --only hammering --instructions   # one part, counted by callgrind

1. Detection latency of an ABBA deadlock in real threads: from the moment both
   threads hold their first lock to the end of the failing test, with the
   default ``deadlock_timeout`` (1.0 s; target <= 1.5 s, with the cycle named),
   next to pytest-timeout alone on the same test (``--timeout 5``, signal
   method, plugin parts off): it fires at its timeout and names no cycle.
2. Overhead of the instrumentation on lock-heavy code (Lock, RLock,
   Condition, Queue, Event, ThreadPool-like hand-offs), watched vs plain
   ``threading`` in the same process (target < 2x).
3. Overhead on a suite that uses no threads: 300 trivial tests, pytest with
   the plugin's deadlock, hygiene and process parts vs without them
   (target < 5 %): the CPU time of the whole pytest process (startup
   included) and pytest's own "passed in" time; best of several interleaved
   runs, since the machine is shared.

For numbers that do not depend on the machine's load, ``--instructions``
counts instructions with ``valgrind --tool=callgrind`` instead of timing:
for 2, each workload at two sizes, plain and watched (the difference is the
cost of the items, without start-up); for 3, the whole pytest run, with and
without our parts (start-up included), address randomization off and a fixed
hash seed so that a run repeats to the instruction.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from pytest_concurrency.deadlock import _waitgraph

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
WITHOUT_US = ["-p", "no:pytest_concurrency.deadlock", "-p", "no:pytest_concurrency.hygiene",
              "-p", "no:pytest_concurrency.fixtures.processes"]

ABBA = textwrap.dedent("""
    import threading, time

    def test_abba():
        first, second = threading.Lock(), threading.Lock()
        both = threading.Barrier(2)

        def both_hold_one():
            if both.wait() == 0:  # the last to arrive: the deadlock is formed now
                with open("formed", "w") as f:
                    f.write(repr(time.monotonic()))

        def unwound():
            with open("unwound", "a") as f:
                f.write(repr(time.monotonic()) + " ")

        def forward():
            try:
                with first:
                    both_hold_one()
                    with second:
                        pass
            except BaseException:
                unwound()
                raise

        def backward():
            try:
                with second:
                    both_hold_one()
                    with first:
                        pass
            except BaseException:
                unwound()
                raise

        workers = [threading.Thread(target=f, daemon=True) for f in (forward, backward)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
""")


def latency(extra: list[str]) -> tuple[float, bool, float | None]:
    """Seconds from the deadlock to pytest's end of that test, whether the cycle was named,
    and seconds from the deadlock to the first thread unwound (None if none was)."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "test_abba.py").write_text(ABBA)
        out = subprocess.run(
            [*PYTEST, "test_abba.py", "--junitxml=r.xml", *extra],
            cwd=folder, capture_output=True, text=True, timeout=120,
        ).stdout
        formed = float(Path(folder, "formed").read_text())
        finished = os.path.getmtime(Path(folder, "r.xml"))  # written right after the test
        # getmtime is wall time, formed is monotonic: convert through "now".
        finished_monotonic = time.monotonic() - (time.time() - finished)
        unwound_file = Path(folder, "unwound")
        unwound = (min(float(t) for t in unwound_file.read_text().split()) - formed
                   if unwound_file.exists() else None)
        return finished_monotonic - formed, "wait for each other in a cycle" in out, unwound


def lock_heavy_work(n: int) -> None:
    lock, rlock, cond = threading.Lock(), threading.RLock(), threading.Condition()
    jobs: queue.Queue = queue.Queue()
    done = threading.Event()
    total = [0]

    def worker() -> None:
        while (item := jobs.get()) is not None:
            with lock:
                total[0] += item
            with rlock, rlock:
                total[0] -= 0
            with cond:
                cond.notify_all()
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    for i in range(n):
        jobs.put(i)
        with lock:
            pass
    jobs.put(None)
    thread.join()
    assert done.is_set()


def thread_pool_work(n: int) -> None:
    """The model solution of exercise 07 mapping ``n`` small tasks over 4 workers."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "solutions" / "07_thread_pool"))
    import thread_pool

    with thread_pool.ThreadPool(4) as pool:
        assert pool.map(abs, range(-n, 0)) == list(range(n, 0, -1))


def overhead(work, n: int, repeats: int) -> tuple[float, float, float, float]:
    """Best wall and CPU (process) times, plain then watched, interleaved runs.

    CPU time is the steadier number on a shared machine: other processes do
    not add to it, and neither does waiting for the other thread.
    """
    walls: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for watched in (False, True):
            if watched:
                _waitgraph.install()
            try:
                start, start_cpu = time.perf_counter(), time.process_time()
                work(n)
                walls[watched].append(time.perf_counter() - start)
                cpus[watched].append(time.process_time() - start_cpu)
            finally:
                if watched:
                    _waitgraph.uninstall()
    return min(walls[False]), min(walls[True]), min(cpus[False]), min(cpus[True])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# With PYTHONDONTWRITEBYTECODE set, every run compiles our edited modules again:
# a start-up cost that users, whose bytecode is cached, never pay.
CACHED_BYTECODE = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


NO_THREAD_SUITE = "\n".join(f"def test_{i}():\n    assert sum(range({i} + 10)) >= 0\n" for i in range(300))


def no_thread_suite(repeats: int) -> dict[bool, tuple[float, float]]:
    """With and without our parts: best (process CPU, "passed in") of the runs."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "test_many.py").write_text(NO_THREAD_SUITE)

        def once(extra: list[str]) -> tuple[float, float]:
            before = _children_cpu()
            out = subprocess.run([*PYTEST, "test_many.py", *extra], cwd=folder, env=CACHED_BYTECODE,
                                 capture_output=True, text=True, timeout=300).stdout
            cpu = _children_cpu() - before
            match = re.search(r"300 passed in ([\d.]+)s", out)
            assert match, out
            return cpu, float(match.group(1))

        once([])  # compiled modules cached, files in the page cache
        runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for _ in range(repeats):
            for with_us in (True, False):
                runs[with_us].append(once([] if with_us else WITHOUT_US))
        return {k: (min(c for c, _ in v), min(s for _, s in v)) for k, v in runs.items()}


WORKLOADS = {"pool": thread_pool_work, "hammering": lock_heavy_work}
PARTS = ("latency", "pool", "hammering", "no-thread")
# Deterministic runs under callgrind: no address randomization, one hash seed.
DETERMINISTIC = ["setarch", "-R"]


def _callgrind(command: list[str], cwd: str | None = None) -> int:
    """Instructions executed by ``command`` (all its threads), counted by callgrind."""
    with tempfile.TemporaryDirectory() as out:
        env = {**CACHED_BYTECODE, "PYTHONHASHSEED": "0"}
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=900)  # bytecode cached
        randomization = DETERMINISTIC if shutil.which("setarch") else []
        subprocess.run([*randomization, "valgrind", "--tool=callgrind",
                        f"--callgrind-out-file={out}/cg", *command],
                       cwd=cwd, env=env, capture_output=True, timeout=900, check=True)
        for line in Path(out, "cg").read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def workload_instructions(name: str, small: int, large: int) -> tuple[float, float]:
    """Instructions per item of a workload, plain and watched (start-up and the small run subtracted)."""
    per_item = []
    for watched in (False, True):
        counts = [_callgrind([sys.executable, __file__, "--run", name, str(n), *(["--watched"] if watched else [])])
                  for n in (small, large)]
        per_item.append((counts[1] - counts[0]) / (large - small))
    return per_item[0], per_item[1]


def no_thread_instructions() -> tuple[int, int]:
    """Instructions of the whole pytest run of the no-thread suite: with our parts, without."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "test_many.py").write_text(NO_THREAD_SUITE)
        return (_callgrind([*PYTEST, "test_many.py"], cwd=folder),
                _callgrind([*PYTEST, "test_many.py", *WITHOUT_US], cwd=folder))


def run_one(name: str, n: int, watched: bool) -> None:
    """One workload, once (what --instructions counts)."""
    if watched:
        _waitgraph.install()
    WORKLOADS[name](n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only this part (repeatable)")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions with valgrind's callgrind (parts 2 and 3)")
    parser.add_argument("--run", nargs=2, metavar=("WORKLOAD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--watched", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(args.run[0], int(args.run[1]), args.watched)
        return
    parts = set(args.only or PARTS)
    if args.instructions:
        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind (apt-get install valgrind)")
        instructions(parts)
        return
    timed(parts, 3 if args.quick else 7)


def instructions(parts: set[str]) -> None:
    for name, label in (("pool", "exercise 07 solution, pool.map of small tasks"),
                        ("hammering", "two threads hammering one Lock, RLock, Condition, Queue")):
        if name in parts:
            plain, watched = workload_instructions(name, 1_000, 6_000)
            print(f"{label}: instructions per item plain {plain:,.0f}, watched {watched:,.0f}: "
                  f"{watched / plain:.2f}x  (target < 2x)")
    if "no-thread" in parts:
        with_us, without = no_thread_instructions()
        print(f"300 tests that use no threads, instructions of the whole run: without {without:,}, "
              f"with {with_us:,}: {(with_us / without - 1) * 100:+.1f} %  (target < 5 %)")


def timed(parts: set[str], repeats: int) -> None:
    if "latency" in parts:
        latency_part(repeats)
    if "pool" in parts or "hammering" in parts:
        print("2. Lock-heavy code, plain vs watched threading (same process, best of runs)")
    for name, label, work, n in (
        ("pool", "exercise 07 solution, pool.map of 5,000 tasks", thread_pool_work, 5_000),
        ("hammering", "two threads hammering one Lock, RLock, Condition, Queue", lock_heavy_work, 20_000),
    ):
        if name not in parts:
            continue
        plain, watched, plain_cpu, watched_cpu = overhead(work, n, repeats)
        print(f"   {label}: wall plain {plain * 1000:.0f} ms, watched {watched * 1000:.0f} ms: "
              f"{watched / plain:.2f}x; CPU plain {plain_cpu * 1000:.0f} ms, watched "
              f"{watched_cpu * 1000:.0f} ms: {watched_cpu / plain_cpu:.2f}x  (target < 2x)")
    if "no-thread" in parts:
        no_thread_part(repeats)


def latency_part(repeats: int) -> None:
    print("1. ABBA deadlock in real threads: latency from deadlock to failed test")
    ours = [latency([]) for _ in range(repeats)]
    theirs = [latency([*WITHOUT_US, "--timeout", "5", "--timeout-method", "signal"]) for _ in range(2)]
    ends = sorted(s for s, _, _ in ours)
    unwinds = sorted(u for _, _, u in ours if u is not None)
    print(f"   pytest-concurrency (deadlock_timeout 1.0): to the failed test: worst {ends[-1]:.2f} s, "
          f"median {ends[len(ends) // 2]:.2f} s, cycle named: {all(named for _, named, _ in ours)}  "
          "(target <= 1.5 s)")
    if unwinds:
        print(f"   of which detection (deadlock to the threads unwound, timeout included): "
              f"worst {unwinds[-1]:.2f} s, median {unwinds[len(unwinds) // 2]:.2f} s; "
              f"pytest's own share: median {ends[len(ends) // 2] - unwinds[len(unwinds) // 2]:.2f} s")
    print(f"   pytest-timeout alone (--timeout 5):        worst {max(s for s, _, _ in theirs):.2f} s, "
          f"cycle named: {any(named for _, named, _ in theirs)}")


def no_thread_part(repeats: int) -> None:
    print("3. 300 tests that use no threads, with and without the deadlock/hygiene/processes parts,"
          " best of several runs")
    suite = no_thread_suite(max(repeats, 5))
    for index, label in ((0, "CPU of the pytest process"), (1, 'pytest\'s "passed in"')):
        with_us, without = suite[True][index], suite[False][index]
        print(f"   {label}: without {without:.2f} s, with {with_us:.2f} s: "
              f"{(with_us / without - 1) * 100:+.1f} %  (target < 5 %)")


if __name__ == "__main__":
    main()
