"""Benchmark of the controlled scheduler (not a test: it prints tables).

    python benchmarks/bench_scheduler.py            # everything (a few minutes)
    python benchmarks/bench_scheduler.py --quick    # fewer seeds and examples
    python benchmarks/bench_scheduler.py --throughput   # the throughput table only
    python benchmarks/bench_scheduler.py --peers    # side by side with the peers (make bench-peers)
    python benchmarks/bench_scheduler.py --shrink   # how far failures shrink
    python benchmarks/bench_scheduler.py --distinct # different interleavings per 200 examples

1. Throughput: schedules explored per second through Hypothesis, for
   2 threads x 3 increments (target: >= 1,000/s), next to its parts: best
   and median of several rounds (--rounds), and each line's cost next to
   Hypothesis alone, which does not depend on how fast the machine is at
   the moment (on a shared virtual machine that varies by a third from one
   minute to the next).  For numbers that do not depend on load at all,
   count instructions: valgrind --tool=callgrind.  The line above the table
   is what a hand-off between two threads free to run on any CPU costs on
   this machine right now; the scheduler keeps a run on one CPU, where it
   costs about 20 us.
2. The bug corpus (tests/scheduler_corpus): for each classic bug, found or
   not within 200 examples, examples and seconds to find it (median over
   several Hypothesis seeds), next to plain-thread stress given one second,
   with the default switch interval and with sys.setswitchinterval(1e-6); and
   whether the fixed twin passes 500 examples (no false positive).
3. --peers: the same corpus through schedules() and every peer installed
   (interleave-test's PCT and random strategies, frontrun's DPOR and random
   mode; ``pip install -e .[peers]``, Python 3.13), with one budget for all:
   500 schedules or 10 s per bug and twin, each search in its own process
   after an untimed search of a scenario with nothing to find, so that the
   seconds are the search's, not a tool's first call (benchmarks/peers.py).  A search whose process crashes or outlives the
   budget is inconclusive.
4. --shrink: how far a failure shrinks, per bug over several seeds: the
   preemptions in the falsifying example Hypothesis reports (fewest, median,
   most), and on how many seeds it reached the fewest any seed reached.
5. --distinct: coverage, how many of 200 examples on each fixed twin (which
   never fails, so all 200 run) were interleavings not seen before (the
   same thread switches at the same steps count as one): when every run
   counts as an example, and as under pytest, where a run that repeats an
   interleaving does not count (pytest_concurrency/scheduler/_novelty.py).
   Examples in the other tables count as under pytest; their "examples" are
   runs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import scheduler_corpus  # noqa: E402
from hypothesis import Phase, given, seed, settings  # noqa: E402

from pytest_concurrency import schedules  # noqa: E402
from pytest_concurrency.scheduler import _novelty  # noqa: E402
from pytest_concurrency.scheduler._patching import uninstall  # noqa: E402


def explore(scenario, max_examples: int, run_seed: int | None) -> tuple[int | None, float]:
    """Examples until scenario fails (None if it never did) and the seconds it took."""
    count = 0

    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        derandomize=run_seed is None,
    )
    @given(schedules())
    def search(schedule):
        nonlocal count
        count += 1
        scenario(schedule)

    counted(search)
    test = search if run_seed is None else seed(run_seed)(search)
    started = time.perf_counter()
    try:
        test()
    except BaseException:  # noqa: BLE001 - any failure is the bug showing
        return count, time.perf_counter() - started
    finally:
        uninstall()
    return None, time.perf_counter() - started


def shrunk_preemptions(scenario, run_seed: int) -> int | None:
    """Preemptions in the falsifying example Hypothesis reports (None: not found in 200)."""
    last: list = []

    @settings(max_examples=200, database=None, deadline=None, report_multiple_bugs=False)
    @given(schedules())
    def search(schedule):
        last.append(schedule)
        scenario(schedule)

    counted(search)
    try:
        seed(run_seed)(search)()
    except BaseException:  # noqa: BLE001 - any failure is the bug showing
        return last[-1]._last.preemptions_taken  # the final replay: the shrunk example
    finally:
        uninstall()
    return None


def print_shrink(names, seeds: int) -> None:
    header = f"{'bug':<24} {'found':>6}   {'preemptions: fewest':>19} {'median':>7} {'most':>5}   {'at fewest':>9}"
    print(header)
    print("-" * len(header))
    total = at_fewest_total = 0
    for name in names:
        module = scheduler_corpus.load(name)
        shrunk = [p for p in (shrunk_preemptions(module.buggy, 1000 + i) for i in range(seeds)) if p is not None]
        if not shrunk:
            print(f"{name:<24} {0:>3}/{seeds:<2}")
            continue
        fewest = min(shrunk)
        at_fewest = shrunk.count(fewest)
        total += len(shrunk)
        at_fewest_total += at_fewest
        print(
            f"{name:<24} {len(shrunk):>3}/{seeds:<2}   {fewest:>19} {statistics.median(shrunk):>7.0f} "
            f"{max(shrunk):>5}   {at_fewest:>5}/{len(shrunk):<3}"
        )
    print("-" * len(header))
    print(f"failures shrunk to the fewest preemptions any seed reached: {at_fewest_total}/{total}")


def counted(search, rejects_per_new: int = _novelty.REJECTS_PER_NEW) -> _novelty.Novelty:
    """Count search's examples as pytest does: a repeated interleaving does not count."""
    novelty = _novelty.Novelty(rejects_per_new)
    handle = search.hypothesis
    handle.inner_test = _novelty.count_new_interleavings_only(handle.inner_test, novelty)
    return novelty


def distinct_interleavings(scenario, run_seed: int, rejects_per_new: int, examples: int = 200) -> tuple[int, int]:
    """(different interleavings, runs) over one Hypothesis search of scenario, 200 examples counted."""
    runs = 0

    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate])
    @given(schedules())
    def search(schedule):
        nonlocal runs
        runs += 1
        scenario(schedule)

    novelty = counted(search, rejects_per_new)
    try:
        seed(run_seed)(search)()
    finally:
        uninstall()
    return novelty.new, runs


def print_distinct(names, seeds: int) -> None:
    header = (
        f"{'fixed twin':<24} {'every run counts: new/200':>26}   "
        f"{'repeats do not count: new/200 (runs)':>42}"
    )
    print(header)
    print("-" * len(header))
    shares: dict[int, list[float]] = {0: [], _novelty.REJECTS_PER_NEW: []}
    for name in names:
        module = scheduler_corpus.load(name)
        cells = []
        for rejects in shares:
            results = [distinct_interleavings(module.fixed, 1000 + i, rejects) for i in range(seeds)]
            shares[rejects].extend(new / 200 for new, _ in results)
            if rejects:
                cells.append("  ".join(f"{new:>3} ({runs:>3})" for new, runs in results))
            else:
                cells.append("  ".join(f"{new:>3}" for new, _ in results))
        print(f"{name:<24} {cells[0]:>26}   {cells[1]:>42}")
    print("-" * len(header))
    plain, counting = (statistics.median(share) for share in shares.values())
    print(f"median share of 200 examples that were a new interleaving: {plain:.0%} when every run counts,")
    print(f"{counting:.0%} when repeats do not count (as under pytest; at most {_novelty.REJECTS_PER_NEW} per new one)")


class PlainThreads:
    """schedule.run's contract with real threads, for the stress comparison."""

    def __init__(self, patience: float = 0.5) -> None:
        self.patience = patience

    def run(self, *callables):
        results: list[object] = [None] * len(callables)
        errors: list[BaseException] = []

        def runner(i, fn):
            def go():
                try:
                    results[i] = fn()
                except BaseException as error:  # noqa: BLE001
                    errors.append(error)

            return go

        threads = [threading.Thread(target=runner(i, fn), daemon=True) for i, fn in enumerate(callables)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.patience)
            if thread.is_alive():
                raise TimeoutError("a thread hung: deadlock")
        if errors:
            raise errors[0]
        return results


def stress(scenario, budget: float, switch_interval: float | None) -> tuple[bool, int]:
    """Run scenario with plain threads for `budget` seconds; (found, runs)."""
    old = sys.getswitchinterval()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    runs = 0
    try:
        deadline = time.perf_counter() + budget
        while time.perf_counter() < deadline:
            runs += 1
            try:
                scenario(PlainThreads())
            except BaseException:  # noqa: BLE001
                return True, runs
        return False, runs
    finally:
        sys.setswitchinterval(old)


class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        for _ in range(3):
            self.n += 1


def _rate(function, count: int) -> float:
    """Per wall second, for count calls' worth."""
    started = time.perf_counter()
    function()
    return count / (time.perf_counter() - started)


def throughput(examples: int) -> dict[str, float]:
    """Schedules per second: through Hypothesis, Hypothesis alone, drawing alone, run() alone."""
    from hypothesis import strategies as st

    from pytest_concurrency import Schedule

    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate])
    @given(schedules())
    def through_hypothesis(schedule):
        counter = Counter()
        schedule.run(counter.incr, counter.incr)

    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate])
    @given(st.integers())
    def hypothesis_alone(number):
        pass

    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate])
    @given(schedules())
    def drawing_alone(schedule):
        pass

    def run_alone():
        for i in range(examples):
            counter = Counter()
            Schedule(after_switch=[(i % 20, 0)]).run(counter.incr, counter.incr)

    through_hypothesis()  # warm up
    rates = {
        "schedules() through Hypothesis": _rate(through_hypothesis, examples),
        "Hypothesis alone, st.integers()": _rate(hypothesis_alone, examples),
        "schedules() drawn, not run": _rate(drawing_alone, examples),
        "Schedule.run alone": _rate(run_alone, examples),
    }
    uninstall()
    return rates


def handoff_round_trip(count: int = 5000) -> float:
    """Microseconds for two real threads to pass a baton there and back (locks, as the scheduler does).

    Every preemption costs a hand-off and, later, one back; on a shared virtual
    machine this varies from about 20 to over 100 microseconds from hour to
    hour, and with it the schedules a second.
    """
    import _thread

    there, back = _thread.allocate_lock(), _thread.allocate_lock()
    there.acquire()
    back.acquire()

    def partner() -> None:
        for _ in range(count):
            there.acquire()
            back.release()

    _thread.start_new_thread(partner, ())
    started = time.perf_counter()
    for _ in range(count):
        there.release()
        back.acquire()
    return (time.perf_counter() - started) / count * 1e6


def print_throughput(rounds: int, examples: int) -> None:
    """The throughput table: best and median of ``rounds`` rounds, per wall second.

    The rounds take turns with each line, so that a change in the machine's
    speed (a shared virtual machine's varies from minute to minute) weighs on
    every line alike.  Best of the rounds is what the machine can do (as
    ``timeit`` reports it: the slower rounds measure other processes); the
    median is there for the reader who wants the typical case.  The last
    column is a line's cost per example next to Hypothesis alone, which does
    not depend on the machine's speed.
    """
    per_round: dict[str, list[float]] = {}
    handoffs: list[float] = []
    for _ in range(rounds):
        handoffs.append(handoff_round_trip(2000))
        for label, rate in throughput(examples).items():
            per_round.setdefault(label, []).append(rate)
    alone = statistics.median(per_round["Hypothesis alone, st.integers()"])
    print(
        f"a thread hand-off there and back, between threads free to run on any CPU: "
        f"{statistics.median(handoffs):.0f} us (median of {rounds}; this machine, now)"
    )
    print(f"throughput, 2 threads x 3 increments ({rounds} rounds of {examples:,} examples, per wall s)")
    print(f"  {'':<38} {'best':>8} {'median':>8}   {'cost vs Hypothesis alone':>24}")
    for label, rates in per_round.items():
        median = statistics.median(rates)
        print(f"  {label:<38} {max(rates):>8,.0f} {median:>8,.0f}   {alone / median:>23.2f}x")


def exhaustive(scenario) -> tuple[bool, int]:
    """(found, schedules) for explore_all with at most 2 preemptions."""
    from pytest_concurrency import explore_all

    try:
        result = explore_all(scenario, max_preemptions=2, max_schedules=5000)
    except Exception as error:  # noqa: BLE001 - the bug showing
        note = next((n for n in getattr(error, "__notes__", []) if "explore_all" in n), "")
        number = int(note.split("schedule ")[1].split(" ")[0]) if note else 0
        return True, number
    return False, result.schedules


PEERS_SCRIPT = Path(__file__).resolve().parent / "peers.py"


def _peer_command(tool: str) -> list[str]:
    """frontrun refuses to explore outside its CLI (it preloads a library): start the child through it."""
    if tool.startswith("frontrun"):
        launcher = Path(sys.executable).parent / "frontrun"
        return [str(launcher), sys.executable] if launcher.exists() else [sys.executable]
    return [sys.executable]


def peer_search(tool: str, name: str, kind: str, budget: int, seconds: float) -> dict[str, object]:
    """One search in its own process: found, schedules, seconds, detail; or inconclusive."""
    import json
    import subprocess

    command = [*_peer_command(tool), str(PEERS_SCRIPT), tool, name, kind, str(budget), str(seconds)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"inconclusive": "hung past the budget"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"inconclusive": f"crashed: {last[:120]}"}
    outcome = json.loads(lines[-1])
    detail = str(outcome.get("detail", ""))
    if not outcome["found"] and detail.startswith("inconclusive"):
        return {"inconclusive": detail}
    return outcome


def print_peers(names: list[str], budget: int, seconds: float, jobs: int) -> None:
    """Per bug, schedules to the first failure for every tool; then per tool, the summary."""
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(PEERS_SCRIPT.parent))
    import peers

    tools = peers.available()
    missing = [tool for tool in peers.TOOLS if tool not in tools]
    print(f"peers: budget {budget} schedules or {seconds:g} s per bug, each search in its own process")
    if missing:
        print(f"not installed here (pip install -e .[peers] on Python 3.13): {', '.join(missing)}")
    work = [(tool, name, kind) for name in names for kind in ("buggy", "fixed") for tool in tools]
    with ThreadPoolExecutor(jobs) as pool:
        outcomes = dict(zip(work, pool.map(lambda w: peer_search(*w, budget, seconds), work), strict=True))
    notes: dict[str, int] = {}

    def cell(outcome: dict[str, object], found_is_bad: bool) -> str:
        if "inconclusive" in outcome:
            # One footnote per kind of reason: "execution 3" and "execution 1" are one.
            reason = re.sub(r"\b\d+\b", "N", str(outcome["inconclusive"]).removeprefix("inconclusive: "))
            number = notes.setdefault(reason, len(notes) + 1)
            return f"inc[{number}]"
        if outcome["found"]:
            return "FAILS" if found_is_bad else str(outcome["schedules"])
        return "ok" if found_is_bad else "-"

    width = max(len(tool) for tool in tools) + 1
    print(f"{'bug (schedules to the first failure)':<28}" + "".join(f"{t:>{width}}" for t in tools))
    for name in names:
        row = "".join(f"{cell(outcomes[(t, name, 'buggy')], False):>{width}}" for t in tools)
        print(f"{name:<28}{row}")
    print()
    print(f"{'tool':<20} {'found':>7} {'false +':>8} {'inconcl.':>9} {'median ms':>10} {'median sched.':>14}")
    for tool in tools:
        hits = [outcomes[(tool, n, "buggy")] for n in names if outcomes[(tool, n, "buggy")].get("found")]
        false = sum(bool(outcomes[(tool, n, "fixed")].get("found")) for n in names)
        unsure = sum("inconclusive" in outcomes[(tool, n, k)] for n in names for k in ("buggy", "fixed"))
        seconds_to = statistics.median(float(h["seconds"]) for h in hits) if hits else float("nan")  # type: ignore[arg-type]
        schedules_to = statistics.median(int(h["schedules"]) for h in hits) if hits else float("nan")  # type: ignore[call-overload]
        print(
            f"{tool:<20} {len(hits):>3}/{len(names):<3} {false:>8} {unsure:>9} "
            f"{seconds_to * 1000:>10.1f} {schedules_to:>14.0f}"
        )
    for reason, number in notes.items():
        print(f"[{number}] inconclusive: {reason}")
    fixed_failures = [(t, n) for t in tools for n in names if outcomes[(t, n, "fixed")].get("found")]
    for tool, name in fixed_failures:
        print(f"false positive: {tool} failed the fixed twin of {name}: {outcomes[(tool, name, 'fixed')]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and examples")
    parser.add_argument("--seeds", type=int, default=None, help="Hypothesis seeds per bug")
    parser.add_argument("--only", nargs="*", help="corpus entries to run")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the throughput measure")
    parser.add_argument("--throughput", action="store_true", help="only the throughput table")
    parser.add_argument("--peers", action="store_true", help="only the side-by-side table with the peers")
    parser.add_argument("--budget", type=int, default=500, help="--peers: schedules per bug")
    parser.add_argument("--seconds", type=float, default=10.0, help="--peers: seconds per bug")
    parser.add_argument("--jobs", type=int, default=2, help="--peers: searches at once")
    parser.add_argument("--shrink", action="store_true", help="only the table of how far failures shrink")
    parser.add_argument("--distinct", action="store_true", help="only the table of different interleavings")
    options = parser.parse_args()
    if options.distinct:
        print(f"Python {sys.version.split()[0]}")
        print_distinct(options.only or scheduler_corpus.NAMES, options.seeds or 3)
        return
    if options.shrink:
        print(f"Python {sys.version.split()[0]}")
        print_shrink(options.only or scheduler_corpus.NAMES, options.seeds or 10)
        return
    if options.peers:
        import os

        print(f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print_peers(options.only or scheduler_corpus.NAMES, options.budget, options.seconds, options.jobs)
        return
    seeds = options.seeds or (3 if options.quick else 7)
    twin_examples = 200 if options.quick else 500
    stress_budget = 0.3 if options.quick else 1.0

    import os

    print(f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rounds = options.rounds or (3 if options.quick else 7)
    print_throughput(rounds, 500 if options.quick else 1000)
    print()
    if options.throughput:
        return

    header = (
        f"{'bug':<24} {'found':>6} {'examples':>9} {'seconds':>8}   "
        f"{'stress 1s':>10} {'stress 1e-6':>12}   {'twin':>10}   {'exhaustive<=2':>14}"
    )
    print(header)
    print("-" * len(header))
    all_examples: list[float] = []
    all_seconds: list[float] = []
    found_all = twins_ok = 0
    names = options.only or scheduler_corpus.NAMES
    for name in names:
        module = scheduler_corpus.load(name)
        results = [explore(module.buggy, 200, 1000 + i) for i in range(seeds)]
        found = [r for r in results if r[0] is not None]
        examples = statistics.median(r[0] for r in found) if found else float("nan")
        seconds = statistics.median(r[1] for r in found) if found else float("nan")
        if len(found) == seeds:
            found_all += 1
        all_examples.extend(r[0] for r in found)
        all_seconds.extend(r[1] for r in found)
        plain, _ = stress(module.buggy, stress_budget, None)
        tiny, _ = stress(module.buggy, stress_budget, 1e-6)
        twin_failed, _ = explore(module.fixed, twin_examples, None)
        twin = f"{twin_examples} ok" if twin_failed is None else f"FAILS@{twin_failed}"
        twins_ok += twin_failed is None
        worst = max((r[0] for r in found), default=0)
        found_exhaustively, explored = exhaustive(module.buggy)
        exhaustive_text = f"found@{explored}" if found_exhaustively else f"MISSED ({explored})"
        print(
            f"{name:<24} {len(found):>3}/{seeds:<2} {examples:>9.0f} {seconds:>8.3f}   "
            f"{'found' if plain else '-':>10} {'found' if tiny else '-':>12}   {twin:>10}"
            f"   {exhaustive_text:>14}   (worst {worst})"
        )
    print("-" * len(header))
    print(
        f"found by every seed: {found_all}/{len(names)}; median examples "
        f"{statistics.median(all_examples):.0f}, max {max(all_examples):.0f}; median seconds "
        f"{statistics.median(all_seconds):.3f}; twins passing: {twins_ok}/{len(names)}"
    )


if __name__ == "__main__":
    main()
