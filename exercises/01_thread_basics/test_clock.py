"""Graded tests of exercise 01: a clock thread."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import Phase, given, settings

from pytest_concurrency import load_impl, schedules

clock = load_impl("clock")

# Generous: a correct clock meets every rendezvous in milliseconds, but the
# machine running the tests may be busy.
PATIENCE = 10.0

# The timing tests run on the virtual clock of schedules(); these are virtual seconds.
# A clock that sleeps through stop() is caught by a whole interval: it ends at t=120.
LONG_INTERVAL = 60.0
STOP_AT = 90.0  # between the second tick (t=60) and the third (t=120)
PROMPT = 1.0  # stop() must end the clock within this (an Event wakes at once: 0 s)
VIRTUAL_PATIENCE = 100.0  # how long a join waits before the test gives up
# Timing does not depend on the interleaving: a few schedules show it. No
# "explain" phase: it reruns a failing example ~80 times to say which part of
# a schedule matters, and here none does.
timing_settings = settings(
    max_examples=5, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)


class TickLog:
    """A ``tick`` function that records every call: its number, thread and time.

    ``on_tick(n)``, when given, runs inside each tick (to call stop() from there).
    """

    def __init__(self, on_tick=None) -> None:
        self.numbers: list[int] = []
        self.threads: list[threading.Thread] = []
        self.times: list[float] = []
        self._changed = threading.Condition()
        self._on_tick = on_tick

    def __call__(self, n: int) -> None:
        with self._changed:
            self.numbers.append(n)
            self.threads.append(threading.current_thread())
            self.times.append(time.monotonic())
            self._changed.notify_all()
        if self._on_tick is not None:
            self._on_tick(n)

    def wait_for(self, count: int) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.numbers) >= count, PATIENCE):
                raise AssertionError(
                    f"the clock ticked {len(self.numbers)} times in {PATIENCE:g} s; "
                    f"expected at least {count} ticks (was it started? does run() loop?)"
                )


def joined(thread: threading.Thread, what: str) -> None:
    thread.join(PATIENCE)
    assert not thread.is_alive(), (
        f"{what}: the clock thread was still alive {PATIENCE:g} s later "
        "(does it sleep instead of waiting on an Event? does it check for stop after waiting?)"
    )


@pytest.fixture
def clocks():
    """Clock threads made by a test; any still running at the end are stopped."""
    made: list = []
    yield made
    for thread in made:
        stop = getattr(thread, "stop", None)
        if callable(stop):
            stop()


def at(times: list[float], start: float) -> list[float]:
    """Virtual times as seconds after ``start``, rounded for comparing."""
    return [round(t - start, 6) for t in times]


def shown(times: list[float], start: float, most: int = 8) -> str:
    """``at(times, start)`` for a message: "t=0, 5, 10", long lists cut short."""
    seconds = [f"{t:g}" for t in at(times, start)]
    if not seconds:
        return "never"
    more = f", ... ({len(seconds)} ticks)" if len(seconds) > most else ""
    return "t=" + ", ".join(seconds[:most]) + more


def stop_after_a_few_ticks(stop) -> TickLog:
    """A TickLog that calls ``stop()`` at its fifth tick: a clock that ticks far too often
    (a bug) is stopped there instead of ticking thousands of times in virtual time."""
    return TickLog(on_tick=lambda n: stop() if n >= 4 else None)


def clock_stopped_by_its_third_tick(interval: float, work: float = 0.0):
    """A ClockThread whose tick takes ``work`` virtual seconds, and whose tick(2) calls stop()."""
    holder: list = []

    def on_tick(n: int) -> None:
        if work:
            time.sleep(work)  # virtual: the tick's own work
        if n == 2:
            holder[0].stop()

    log = TickLog(on_tick=on_tick)
    ticker = clock.ClockThread(interval, log)
    holder.append(ticker)
    return ticker, log


def run_until_the_clock_ends(schedule, ticker) -> float:
    """Start ``ticker`` inside a controlled run and wait for it to end; return the start time."""

    def start_and_join() -> float:
        start = time.monotonic()
        ticker.start()
        ticker.join(VIRTUAL_PATIENCE)
        if ticker.is_alive():
            ticker.stop()
            raise AssertionError(
                f"tick(2) called stop(), yet the clock was still running {VIRTUAL_PATIENCE:g} s "
                "(virtual) after start(): check for stop after waiting, before the next tick"
            )
        return start

    (start,) = schedule.run(start_and_join)
    return start


def stop_and_time_the_end(stop, thread: threading.Thread) -> tuple[float, float | None]:
    """Call ``stop()``, join ``thread``: (when stop was called, when the thread ended or None)."""
    stopped = time.monotonic()
    stop()
    thread.join(VIRTUAL_PATIENCE)
    return stopped, None if thread.is_alive() else time.monotonic()


def assert_ended_promptly(what: str, start: float, stopped: float, ended: float | None) -> None:
    when = f"{what} at t={stopped - start:g} s (virtual), with interval={LONG_INTERVAL:g} s"
    assert ended is not None, (
        f"{when}: the clock thread was still running {VIRTUAL_PATIENCE:g} s later "
        "(does the loop check for stop at all?)"
    )
    assert ended - stopped < PROMPT, (
        f"{when}: the clock thread ended at t={ended - start:g}, {ended - stopped:g} s after "
        f"stop; it must end at once (within {PROMPT:g} s), not after the rest of its interval. "
        "time.sleep cannot be interrupted: wait on an Event, which wakes the moment it is set"
    )


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -1.5])
def test_clock_thread_interval_must_be_positive(bad):
    with pytest.raises(ValueError):
        clock.ClockThread(bad, print)


@pytest.mark.points(1)
@pytest.mark.parametrize("bad", [0, -1.5])
def test_start_clock_interval_must_be_positive(bad):
    stop = threading.Event()
    try:
        with pytest.raises(ValueError):
            clock.start_clock(bad, TickLog(), stop=stop)
    finally:
        stop.set()  # should a clock have started after all, it ends here


@pytest.mark.points(2)
def test_clock_thread_is_a_named_daemon_thread_that_waits_for_start(clocks):
    log = TickLog()
    named = clock.ClockThread(1.0, log, name="wall-clock")
    unnamed = clock.ClockThread(1.0, log)
    clocks += [named, unnamed]
    assert isinstance(named, threading.Thread), "ClockThread must subclass threading.Thread"
    assert named.name == "wall-clock", (
        f"name='wall-clock' was given, the thread is named {named.name!r}"
    )
    assert unnamed.name != "wall-clock" and unnamed.name, "without a name, Thread picks one"
    assert named.daemon and unnamed.daemon, (
        "a ClockThread must be a daemon thread: a forgotten clock never keeps the program alive"
    )
    assert not named.is_alive() and not log.numbers, (
        "creating a ClockThread must not run it: nothing happens before start()"
    )


@pytest.mark.points(3)
def test_ticks_count_up_from_zero_in_the_clock_thread(clocks):
    log = TickLog()
    ticker = clock.ClockThread(0.01, log)
    clocks.append(ticker)
    ticker.start()
    log.wait_for(5)
    ticker.stop()
    joined(ticker, "after stop()")
    assert log.numbers == list(range(len(log.numbers))), (
        f"tick must be called with 0, 1, 2, ... in order; it got {log.numbers}"
    )
    strangers = {t.name for t in log.threads if t is not ticker}
    assert not strangers, (
        f"tick ran in {sorted(strangers)}, not in the clock thread {ticker.name!r}: "
        "start() runs run() in the new thread; calling run() yourself does not"
    )


# -- timing, on the virtual clock of schedules(): exact, and no real waiting ---
#
# Inside schedule.run, time.monotonic(), time.sleep() and the timeouts of
# Event.wait and Condition.wait run on a virtual clock that starts at the
# run's start and only moves when every thread is waiting: a tick at t=5 is
# at exactly 5.0 virtual seconds, and waiting 60 s costs nothing. Timing does
# not depend on the interleaving, so a few schedules are plenty.


@pytest.mark.points(2)
@timing_settings
@given(schedules())
def test_ticks_come_exactly_an_interval_apart(schedule):
    interval = 5.0
    ticker, log = clock_stopped_by_its_third_tick(interval)
    start = run_until_the_clock_ends(schedule, ticker)
    assert at(log.times, start) == [0, 5, 10], (
        f"a clock with interval={interval:g} s whose tick(2) calls stop() must tick at "
        f"t=0, 5, 10 (virtual seconds after start()); it ticked at {shown(log.times, start)} "
        "(tick(0) comes at once, then one tick every interval seconds: are the ticks "
        "interval seconds apart, in seconds?)"
    )


@pytest.mark.points(2)
@timing_settings
@given(schedules())
def test_a_slow_tick_does_not_make_the_clock_drift(schedule):
    interval, work = 5.0, 2.0
    ticker, log = clock_stopped_by_its_third_tick(interval, work=work)
    start = run_until_the_clock_ends(schedule, ticker)
    assert at(log.times, start) == [0, 5, 10], (
        f"each tick takes {work:g} s; with interval={interval:g} s the ticks must still come "
        f"at t=0, 5, 10; they came at {shown(log.times, start)}. Waiting a full interval "
        "after each tick adds the tick's own time every time (the clock drifts): wait until "
        "start + n * interval instead (time.monotonic())"
    )


@pytest.mark.points(3)
@timing_settings
@given(schedules())
def test_stop_ends_the_clock_promptly_not_after_a_full_interval(schedule):
    holder: list = []
    log = stop_after_a_few_ticks(lambda: holder[0].stop())
    ticker = clock.ClockThread(LONG_INTERVAL, log)
    holder.append(ticker)

    def stop_at_90_s() -> tuple[float, float, float | None]:
        start = time.monotonic()
        ticker.start()
        time.sleep(STOP_AT)
        return (start, *stop_and_time_the_end(ticker.stop, ticker))

    ((start, stopped, ended),) = schedule.run(stop_at_90_s)
    assert at(log.times, start) == [0, LONG_INTERVAL], (
        f"with interval={LONG_INTERVAL:g} s and stop() at t={STOP_AT:g}, the clock must tick "
        f"at t=0 and t={LONG_INTERVAL:g}, and never after stop(); it ticked at "
        f"{shown(log.times, start)} (virtual seconds after start())"
    )
    assert_ended_promptly("stop()", start, stopped, ended)


@pytest.mark.points(2)
def test_stop_called_from_tick_is_the_last_tick(clocks):
    holder: list = []
    errors: list[BaseException] = []

    def stop_at_two(n: int) -> None:
        if n == 2:
            try:
                holder[0].stop()
            except Exception as error:
                errors.append(error)

    log = TickLog(on_tick=stop_at_two)
    ticker = clock.ClockThread(0.01, log)
    holder.append(ticker)
    clocks.append(ticker)
    ticker.start()
    joined(ticker, "stop() called inside tick(2)")
    assert not errors, (
        f"stop() called from inside tick raised {errors[0]!r}: stop() only asks the clock "
        "to end; a thread cannot join() itself"
    )
    assert log.numbers == [0, 1, 2], (
        f"tick(2) called stop(), so the ticks must be [0, 1, 2]; they were {log.numbers}: "
        "check for stop after waiting, before the next tick"
    )


@pytest.mark.points(1)
def test_a_clock_stopped_before_start_never_ticks(clocks):
    log = TickLog()
    ticker = clock.ClockThread(0.01, log)
    clocks.append(ticker)
    ticker.stop()
    ticker.start()
    joined(ticker, "stop() before start()")
    assert log.numbers == [], (
        f"the clock was stopped before it started, yet it ticked {log.numbers}"
    )


@pytest.mark.points(3)
def test_start_clock_returns_a_started_plain_thread_that_ticks():
    stop = threading.Event()

    def stop_at_two(n: int) -> None:
        if n == 2:
            stop.set()

    log = TickLog(on_tick=stop_at_two)
    try:
        thread = clock.start_clock(0.01, log, stop=stop)
        assert isinstance(thread, threading.Thread), (
            f"start_clock must return the Thread it started, got {type(thread).__name__}"
        )
        assert thread.ident is not None, "start_clock must start the thread before returning it"
        joined(thread, "stop set inside tick(2)")
    finally:
        stop.set()
    assert not isinstance(thread, clock.ClockThread), (
        "start_clock is the other way of making a thread: threading.Thread(target=...), "
        "not a ClockThread"
    )
    assert log.numbers == [0, 1, 2], (
        f"tick(2) set the stop event, so the ticks must be [0, 1, 2]; they were {log.numbers}"
    )
    strangers = {t.name for t in log.threads if t is not thread}
    assert not strangers, f"tick ran in {sorted(strangers)}, not in the thread start_clock returned"


@pytest.mark.points(2)
@pytest.mark.parametrize("daemon", [True, False])
def test_start_clock_daemon_flag(daemon):
    stop = threading.Event()
    try:
        thread = clock.start_clock(0.05, TickLog(), daemon=daemon, stop=stop)
        assert thread.daemon is daemon, (
            f"start_clock(..., daemon={daemon}) returned a thread with daemon={thread.daemon}"
        )
    finally:
        stop.set()
    joined(thread, "stop event set")


@pytest.mark.points(1)
def test_start_clock_is_a_daemon_by_default():
    stop = threading.Event()
    try:
        thread = clock.start_clock(0.05, TickLog(), stop=stop)
        assert thread.daemon, "start_clock's daemon parameter defaults to True"
    finally:
        stop.set()
    joined(thread, "stop event set")


@pytest.mark.points(2)
@timing_settings
@given(schedules())
def test_start_clock_stops_promptly_when_the_event_is_set(schedule):
    stop = threading.Event()
    log = stop_after_a_few_ticks(stop.set)

    def stop_at_90_s() -> tuple[float, float, float | None]:
        start = time.monotonic()
        thread = clock.start_clock(LONG_INTERVAL, log, stop=stop)
        time.sleep(STOP_AT)
        return (start, *stop_and_time_the_end(stop.set, thread))

    try:
        ((start, stopped, ended),) = schedule.run(stop_at_90_s)
    finally:
        stop.set()  # should the run have failed, no clock is left behind
    assert at(log.times, start) == [0, LONG_INTERVAL], (
        f"with interval={LONG_INTERVAL:g} s and the stop event set at t={STOP_AT:g}, the "
        f"clock must tick at t=0 and t={LONG_INTERVAL:g}, and never after; it ticked at "
        f"{shown(log.times, start)} (virtual seconds after start_clock())"
    )
    assert_ended_promptly("the stop event set", start, stopped, ended)
