"""The plumbing of ``bench_scheduler.py --peers`` works, with our own tool only (no peer needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import scheduler_corpus

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_scheduler  # noqa: E402
import peers  # noqa: E402

LOST_UPDATE = scheduler_corpus.load("lost_update")


def test_our_tool_finds_the_bug_and_passes_the_twin_in_process():
    found = peers.search("schedules", LOST_UPDATE.buggy, budget=200, seconds=10)
    assert found.found and 1 <= found.schedules <= 200
    clean = peers.search("schedules", LOST_UPDATE.fixed, budget=30, seconds=10)
    assert not clean.found and clean.schedules == 30


def test_a_search_in_its_own_process_reports_its_outcome():
    outcome = bench_scheduler.peer_search("schedules", "lost_update", "buggy", 200, 10.0)
    assert outcome["found"] is True, outcome


def test_a_crashing_search_is_inconclusive():
    outcome = bench_scheduler.peer_search("schedules", "no_such_bug", "buggy", 10, 5.0)
    assert "inconclusive" in outcome and "crashed" in str(outcome["inconclusive"])


def test_the_scenario_split_for_frontrun_runs_the_checks_after_the_workers():
    for scenario, holds in ((LOST_UPDATE.fixed, True), (scheduler_corpus.load("check_then_act").fixed, True)):
        state = peers._Captured(scenario)
        assert len(state.callables) == 2
        for i in range(len(state.callables)):
            state.worker(i)()
        assert state.check() is holds

    def failing(schedule):
        first, second = schedule.run(lambda: 1, lambda: 2)
        assert first == second, "the check after run() is the scenario's own"

    state = peers._Captured(failing)
    state.worker(0)()
    state.worker(1)()
    assert state.check() is False and "scenario's own" in str(state.failure)
