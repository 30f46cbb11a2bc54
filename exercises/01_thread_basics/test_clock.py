"""Graded tests of exercise 01: a clock thread."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_concurrency import load_impl

clock = load_impl("clock")

# Generous: a correct clock meets every rendezvous in milliseconds, but the
# machine running the tests may be busy.
PATIENCE = 10.0
# Long enough that a clock which sleeps through stop() is plainly caught.
LONG_INTERVAL = 60.0


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


@pytest.mark.points(2)
def test_ticks_are_an_interval_apart(clocks):
    interval = 0.05
    log = TickLog()
    ticker = clock.ClockThread(interval, log)
    clocks.append(ticker)
    ticker.start()
    log.wait_for(4)
    ticker.stop()
    joined(ticker, "after stop()")
    # A lower bound only: a busy machine can make ticks late, never early.
    spent = log.times[3] - log.times[0]
    assert spent >= 3 * interval * 0.9, (
        f"4 ticks with interval={interval} s took {spent:.3f} s; "
        f"they should take at least {3 * interval:.2f} s: wait between ticks"
    )


@pytest.mark.points(3)
def test_stop_ends_the_clock_promptly_not_after_a_full_interval(clocks):
    log = TickLog()
    ticker = clock.ClockThread(LONG_INTERVAL, log)
    clocks.append(ticker)
    ticker.start()
    log.wait_for(1)
    ticker.stop()
    joined(ticker, f"stop() with interval={LONG_INTERVAL:g} s")
    assert log.numbers == [0], (
        f"the first tick comes at once, the second only after {LONG_INTERVAL:g} s; "
        f"the clock ticked {log.numbers}"
    )


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
def test_start_clock_stops_promptly_when_the_event_is_set():
    stop = threading.Event()
    log = TickLog()
    try:
        thread = clock.start_clock(LONG_INTERVAL, log, stop=stop)
        log.wait_for(1)
    finally:
        stop.set()
    joined(thread, f"stop event set with interval={LONG_INTERVAL:g} s")
    assert log.numbers == [0], f"the clock ticked {log.numbers} before it was stopped; expected [0]"
