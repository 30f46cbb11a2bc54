"""schedules() seen from pytest: what a student sees, replay, determinism, patch scope."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

LOST_UPDATE = """
    import threading
    from hypothesis import given, settings
    from pytest_concurrency import schedules

    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1

    @settings(derandomize=True, database=None)
    @given(schedules())
    def test_counter(schedule):
        counter = Counter()
        schedule.run(counter.incr, counter.incr)
        assert counter.n == 2
"""


def interleaving(output: str) -> str:
    """The interleaving block Hypothesis printed under the falsifying example."""
    lines = output.splitlines()
    # Only in the failure's "E" lines: with CI set, pytest repeats the whole
    # message, untruncated, in the short test summary.
    starts = [i for i, line in enumerate(lines) if line.startswith("E") and "Interleaving (" in line]
    assert starts, output
    block = [lines[starts[-1]]]
    for line in lines[starts[-1] + 1 :]:
        if not re.match(r"E {5,}\S", line):
            break
        block.append(line)
    return "\n".join(block)


def test_the_falsifying_example_comes_with_the_interleaving(pytester: pytest.Pytester):
    pytester.makepyfile(test_counter=LOST_UPDATE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "schedule=Schedule(" in output
    story = interleaving(output)
    # One line per step, with the thread, file:line and the source line...
    assert re.search(r"T1 \(Counter.incr\)\s+test_counter.py:\d+\s+self.n \+= 1", story), story
    assert "is preempted; T2 (Counter.incr) runs" in story
    # ...and for the lost update, what each thread read and wrote.
    assert story.count("read self.n = 0") == 2, story
    assert story.count("wrote self.n = 1") == 2, story
    # Shrunk to the fewest preemptions: one, the first thread's first window.
    assert "1 preemption(s)" in story
    assert "schedule=Schedule(windows=((0,), 1, 1))" in output
    assert "Flaky" not in output
    assert "_novelty" not in output  # the counting of new interleavings wraps the test unseen


def test_the_same_test_tells_the_same_story_on_every_run(pytester: pytest.Pytester):
    pytester.makepyfile(test_counter=LOST_UPDATE)
    stories = set()
    for _ in range(2):
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(failed=1)
        stories.add(interleaving(result.stdout.str()))
    assert len(stories) == 1


def test_an_explicit_example_replays_the_interleaving(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_counter=LOST_UPDATE.replace(
            "from hypothesis import given, settings",
            "from hypothesis import example, given, settings, Phase\n"
            "    from pytest_concurrency import Schedule",
        ).replace(
            "@settings(derandomize=True, database=None)",
            "@settings(database=None, phases=[Phase.explicit])\n"
            "    @example(schedule=Schedule(at_steps=[(4, 0)]))",
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "1 preemption(s)" in interleaving(result.stdout.str())


def test_the_database_replays_the_failure_in_a_new_process(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_counter=LOST_UPDATE.replace("@settings(derandomize=True, database=None)", "")
    )
    runs = [pytester.runpytest_subprocess("-p", "no:cacheprovider") for _ in range(3)]
    for result in runs:
        result.assert_outcomes(failed=1)
        assert "Flaky" not in result.stdout.str()
        assert "1 preemption(s)" in interleaving(result.stdout.str())
    # The first run may save more than one failing example; once the database
    # holds the one Hypothesis reports, every later process replays exactly it.
    assert interleaving(runs[1].stdout.str()) == interleaving(runs[2].stdout.str())


def test_a_deadlock_is_reported_with_the_cycle(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_abba="""
        import threading
        from hypothesis import given, settings
        from pytest_concurrency import schedules

        def transfer(first, second):
            with first:
                with second:
                    pass

        @settings(derandomize=True, database=None)
        @given(schedules())
        def test_transfers(schedule):
            a, b = threading.Lock(), threading.Lock()
            schedule.run(lambda: transfer(a, b), lambda: transfer(b, a))
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "DeadlockError: every live thread is blocked" in output
    assert re.search(r"thread 'T1 \(<lambda>\)' holds `first` \(Lock#\d+ made at test_abba.py:\d+\)", output), output
    assert "cycle: thread 'T1 (<lambda>)' -> thread 'T2 (<lambda>)' -> thread 'T1 (<lambda>)'" in output
    assert "with second:" in output


def test_the_patches_live_only_during_a_schedules_test(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_scope="""
        import threading, time
        from hypothesis import given, settings
        from pytest_concurrency import schedules
        from pytest_concurrency.scheduler import _primitives

        SEEN = {}

        def patchable():
            return (threading.Lock, threading.Condition, time.sleep, threading.Thread.start)

        def test_before():
            SEEN["before"] = patchable()
            assert threading.Lock is not _primitives.Lock

        @settings(max_examples=5, database=None)
        @given(schedules())
        def test_with_schedules(schedule):
            assert threading.Lock is _primitives.Lock
            lock = threading.Lock()
            schedule.run(lock.acquire)

        def test_after():
            assert patchable() == SEEN["before"]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_schedule_tests_get_sensible_settings_without_losing_their_own(pytester: pytest.Pytester):
    test_file = """
        from hypothesis import given, settings
        from pytest_concurrency import schedules

        @given(schedules())
        def test_plain(schedule):
            pass

        @settings(deadline=1000, max_examples=7)
        @given(schedules())
        def test_own(schedule):
            pass
    """
    pytester.makepyfile(test_top=test_file)
    pytester.mkdir("exercises")
    pytester.mkdir("exercises/01_thing")
    pytester.path.joinpath("exercises/01_thing/test_graded.py").write_text(
        __import__("textwrap").dedent(test_file)
    )
    seen = {}

    class Probe:
        def pytest_collection_finish(self, session):
            for item in session.items:
                current = item.obj._hypothesis_internal_use_settings
                seen[item.nodeid] = (current.deadline, current.max_examples, current.derandomize)

    result = pytester.runpytest("--co", "-p", "no:cacheprovider", plugins=[Probe()])
    assert result.ret == 0, result.stdout.str()
    from datetime import timedelta

    from hypothesis import settings

    # No deadline, but a deadline the test chose stays; derandomized (graded) in
    # exercises, and elsewhere as Hypothesis's profile says (its "ci" profile does).
    usual = settings.default.derandomize or bool(__import__("os").environ.get("CI"))
    assert seen["test_top.py::test_plain"] == (None, 100, usual)
    assert seen["test_top.py::test_own"] == (timedelta(seconds=1), 7, usual)
    assert seen["exercises/01_thing/test_graded.py::test_plain"][2] is True
    assert seen["exercises/01_thing/test_graded.py::test_own"] == (timedelta(seconds=1), 7, True)


def test_objects_made_by_fixtures_are_controlled_too(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_fixture="""
        import threading
        import pytest
        from hypothesis import HealthCheck, given, settings
        from pytest_concurrency import schedules

        class Counter:
            def __init__(self):
                self.n = 0
                self.lock = threading.Lock()

            def incr(self):
                with self.lock:
                    value = self.n
                    self.n = value + 1

        @pytest.fixture(scope="module")
        def counter():
            return Counter()

        @settings(max_examples=30, database=None, suppress_health_check=list(HealthCheck))
        @given(schedules())
        def test_counter(counter, schedule):
            before = counter.n
            schedule.run(counter.incr, counter.incr)
            assert counter.n == before + 2
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_slow_schedules_are_not_deadline_errors(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_slow="""
        from hypothesis import given, settings
        from pytest_concurrency import schedules

        def busy():
            total = 0
            for i in range(20_000):
                total += i
            return total

        @settings(max_examples=3, database=None)
        @given(schedules())
        def test_busy(schedule):
            assert schedule.run(busy) == [sum(range(20_000))]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


FAILURES_THROUGH_THE_SCHEDULER = """
    import threading
    from pytest_concurrency import explore_all

    def test_lost_update_found_by_explore_all():
        def scenario(schedule):
            box = [0]

            def incr():
                box[0] += 1

            schedule.run(incr, incr)
            assert box[0] == 2

        explore_all(scenario, max_preemptions=1)

    def test_deadlock_in_run():
        def scenario(schedule):
            a, b = threading.Lock(), threading.Lock()

            def forward():
                with a:
                    with b:
                        pass

            def backward():
                with b:
                    with a:
                        pass

            schedule.run(forward, backward)

        explore_all(scenario, max_preemptions=1)
"""


def test_a_failure_through_the_scheduler_shows_no_frame_of_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_subject=FAILURES_THROUGH_THE_SCHEDULER)
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*DeadlockError*", "*assert 1 == 2*"], consecutive=False)
    shown = [line for line in result.stdout.lines if "pytest_concurrency/" in line]
    assert not shown, "\n".join(shown)
