"""Graded tests of exercise 02: call_later and the Debouncer."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from hypothesis import Phase, given, settings

from pytest_concurrency import load_impl, schedules

timers = load_impl("timers")

# Generous: a correct implementation meets every rendezvous in milliseconds.
PATIENCE = 10.0
# Long enough that a timer which was not cancelled is plainly still there.
LONG_WAIT = 60.0

# The timing tests run on the virtual clock of schedules(): inside schedule.run,
# time.monotonic(), time.sleep() and the timeouts of Timer, Event.wait and
# Condition.wait count virtual seconds, which only pass when every thread
# waits. A timer due in 2.5 s fires at exactly t=2.5 and costs no real time.
# Timing does not depend on the interleaving: a few schedules show it. No
# "explain" phase: it reruns a failing example ~80 times to say which part of
# a schedule matters, and here none does.
timing_settings = settings(
    max_examples=5, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
)


def at(times: list[float], start: float) -> list[float]:
    """Virtual times as seconds after ``start``, rounded for comparing and reading."""
    return [round(t - start, 6) for t in times]


class Calls:
    """A function that records each call: arguments, thread, time."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple, dict]] = []
        self.threads: list[threading.Thread] = []
        self.times: list[float] = []
        self._lock = threading.Lock()  # the three lists change together

    def __call__(self, *args, **kwargs) -> None:
        with self._lock:
            self.calls.append((args, kwargs))
            self.threads.append(threading.current_thread())
            self.times.append(time.monotonic())

    @property
    def args(self) -> list[tuple]:
        return [args for args, _ in self.calls]


class NewThreads:
    """The threads started since this object was made."""

    def __init__(self) -> None:
        self._before = set(threading.enumerate())

    def alive(self) -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in self._before and t.is_alive()]

    def join(self) -> None:
        for thread in self.alive():
            thread.join(PATIENCE)
        stuck = [t.name for t in self.alive()]
        assert not stuck, f"threads still alive {PATIENCE:g} s later: {stuck}"


@pytest.fixture
def debouncers():
    """Debouncers made by a test; whatever is still pending at the end is cancelled."""
    made: list = []
    yield made
    for debouncer in made:
        with contextlib.suppress(Exception):  # the test has already failed
            debouncer.cancel()


# -- call_later -------------------------------------------------------------


@pytest.mark.points(1)
def test_call_later_negative_delay_is_a_value_error():
    with pytest.raises(ValueError):
        timers.call_later(-1, print)


@pytest.mark.points(2)
def test_call_later_returns_a_started_timer_that_cancel_stops():
    fn = Calls()
    timer = timers.call_later(LONG_WAIT, fn)
    try:
        assert isinstance(timer, threading.Timer), (
            f"call_later must return the threading.Timer it made, got {type(timer).__name__}"
        )
        assert timer.is_alive(), "call_later must start the timer before returning it"
    finally:
        timer.cancel()
    timer.join(PATIENCE)
    assert not timer.is_alive(), "the timer did not end after cancel()"
    assert not fn.calls, f"a cancelled timer called fn{fn.args[0]}"


@pytest.mark.points(3)
@timing_settings
@given(schedules())
def test_call_later_calls_fn_with_its_arguments_in_the_timer_after_the_delay(schedule):
    fn = Calls()
    delay = 2.5

    def caller() -> tuple[float, threading.Timer]:
        start = time.monotonic()
        timer = timers.call_later(delay, fn, "tea", 2, sugar=False)
        assert not fn.calls or fn.threads[0] is not threading.current_thread(), (
            "call_later called fn at once, in the caller: Timer(delay, fn(*args)) calls fn "
            "before the timer even exists; pass fn and its arguments separately"
        )
        time.sleep(delay + 1)  # virtual: the timer is due at t=2.5
        timer.cancel()  # should it not have fired, it never will
        return start, timer

    ((start, timer),) = schedule.run(caller)
    assert fn.calls, (
        f"call_later({delay:g}, fn, 'tea', 2, sugar=False) never called fn: not by "
        f"t={delay + 1:g} s (virtual). Is the timer started before call_later returns it?"
    )
    assert fn.calls == [(("tea", 2), {"sugar": False})], (
        f"fn must be called once as fn('tea', 2, sugar=False); calls were {fn.calls}"
    )
    assert fn.threads[0] is timer, f"fn ran in {fn.threads[0].name}, not in the timer thread"
    assert at(fn.times, start) == [delay], (
        f"call_later({delay:g}, fn, ...) at t=0 must call fn at t={delay:g} (virtual "
        f"seconds); it called it at t={at(fn.times, start)[0]:g}"
    )


# -- Debouncer --------------------------------------------------------------


@pytest.mark.points(1)
def test_debouncer_negative_wait_is_a_value_error():
    with pytest.raises(ValueError):
        timers.Debouncer(-0.5, print)


@pytest.mark.points(3)
@timing_settings
@given(schedules())
def test_one_call_runs_fn_once_after_the_wait_in_a_timer_thread(schedule):
    fn = Calls()
    wait = 2.0
    debounced = timers.Debouncer(wait, fn)

    def caller() -> tuple[float, threading.Thread]:
        start = time.monotonic()
        debounced("x", level=1)
        time.sleep(3 * wait)  # virtual: the call is due at t=2
        return start, threading.current_thread()

    ((start, caller_thread),) = schedule.run(caller)
    # run() returns once every thread it started has ended: no other call can come.
    assert fn.calls == [(("x",), {"level": 1})], (
        f"one call d('x', level=1) must give exactly one fn('x', level=1) within "
        f"{3 * wait:g} s (virtual); calls were {fn.calls}"
    )
    assert fn.threads[0] is not caller_thread, (
        "fn ran in the caller's thread: a call only schedules fn, a timer runs it"
    )
    assert at(fn.times, start) == [wait], (
        f"one call at t=0 to a Debouncer({wait:g}, fn) must run fn at t={wait:g} "
        f"(virtual seconds), exactly wait seconds after the call; it ran at "
        f"t={at(fn.times, start)[0]:g}"
    )


@pytest.mark.points(3)
@timing_settings
@given(schedules())
def test_a_burst_of_calls_gives_one_call_with_the_last_arguments(schedule):
    fn = Calls()
    debounced = timers.Debouncer(LONG_WAIT, fn)

    def typist() -> None:
        for word in ["h", "he", "hel", "hello"]:
            debounced(word)
        debounced.flush()
        time.sleep(2 * LONG_WAIT)  # virtual: a timer left behind would have fired by now

    schedule.run(typist)
    assert fn.args == [("hello",)], (
        f"4 calls in a row, then flush(), then {2 * LONG_WAIT:g} s (virtual) with "
        f"wait={LONG_WAIT:g}: fn must run once, with the last arguments ('hello',); "
        f"it ran with {fn.args}"
    )


@pytest.mark.points(2)
def test_flush_runs_the_pending_call_now_in_the_caller(debouncers):
    fn = Calls()
    debounced = timers.Debouncer(LONG_WAIT, fn)
    debouncers.append(debounced)
    debounced(1, 2)
    debounced.flush()
    assert fn.args == [(1, 2)], (
        f"flush() must run the pending call before it returns; calls so far: {fn.args}"
    )
    assert fn.threads[0] is threading.current_thread(), (
        f"flush() must call fn itself, in the calling thread; fn ran in {fn.threads[0].name}"
    )


@pytest.mark.points(2)
def test_flush_with_nothing_pending_does_nothing(debouncers):
    fn = Calls()
    debounced = timers.Debouncer(LONG_WAIT, fn)
    debouncers.append(debounced)
    debounced.flush()
    assert fn.calls == [], f"flush() with no call pending called fn{fn.args[0]}"
    debounced("once")
    debounced.flush()
    debounced.flush()
    assert fn.args == [("once",)], (
        f"one call, then flush() twice: fn must run once; it ran with {fn.args}"
    )


@pytest.mark.points(2)
def test_cancel_drops_the_pending_call(debouncers):
    fn = Calls()
    threads = NewThreads()
    debounced = timers.Debouncer(LONG_WAIT, fn)  # it cannot fire before cancel(), however slow
    debouncers.append(debounced)
    debounced("dropped")
    debounced.cancel()
    debounced.flush()
    threads.join()
    assert fn.calls == [], f"cancel() must drop the pending call, yet fn ran with {fn.args}"


@pytest.mark.points(3)
@pytest.mark.parametrize("ending", ["cancel", "flush"])
def test_no_timer_thread_outlives_cancel_or_flush(ending, debouncers):
    fn = Calls()
    threads = NewThreads()
    debounced = timers.Debouncer(LONG_WAIT, fn)
    debouncers.append(debounced)
    for i in range(3):
        debounced(i)
    getattr(debounced, ending)()
    alive = [t.name for t in threads.alive()]
    assert not alive, (
        f"three calls, then {ending}(): when {ending}() returns, no timer may be left; "
        f"still alive: {alive} (cancel every timer you started, then join it)"
    )


@pytest.mark.points(2)
@timing_settings
@given(schedules())
def test_a_debouncer_can_be_used_again_after_it_fired_or_was_cancelled(schedule):
    fn = Calls()
    wait = 1.0
    debounced = timers.Debouncer(wait, fn)

    def fire_cancel_fire() -> None:
        debounced("first")
        time.sleep(2 * wait)  # virtual: "first" fires at t=1
        debounced("dropped")
        debounced.cancel()
        debounced("second")
        time.sleep(2 * wait)  # virtual: "second" fires at t=3

    schedule.run(fire_cancel_fire)
    assert fn.args == [("first",), ("second",)], (
        f"fire, cancel, fire: fn must run with 'first' then 'second'; it ran with {fn.args}"
    )


@pytest.mark.points(3)
def test_calls_from_many_threads_give_exactly_one_call(debouncers):
    fn = Calls()
    threads = NewThreads()
    debounced = timers.Debouncer(LONG_WAIT, fn)
    debouncers.append(debounced)
    n = 8
    start_together = threading.Barrier(n, timeout=PATIENCE)
    errors: list[BaseException] = []

    def caller(i: int) -> None:
        try:
            start_together.wait()
            debounced(i)
        except BaseException as error:
            errors.append(error)

    callers = [threading.Thread(target=caller, args=(i,), name=f"caller-{i}") for i in range(n)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(PATIENCE)
    assert not errors, f"calling the debouncer from {n} threads raised {errors[0]!r}"
    debounced.flush()
    threads.join()
    assert len(fn.calls) == 1, (
        f"{n} threads called the debouncer at once, then flush(): fn must run exactly once; "
        f"it ran {len(fn.calls)} times, with {fn.args}"
    )
    assert fn.args[0][0] in range(n), f"fn ran with {fn.args[0]}, which no thread passed"


# -- races, through the controlled scheduler (virtual time: no real waiting) --


@pytest.mark.points(3)
@given(schedules())
def test_racing_callers_give_exactly_one_call_with_someones_last_arguments(schedule):
    calls: list[tuple] = []  # list.append is atomic
    debounced = timers.Debouncer(1.0, lambda *args: calls.append(args))

    def typist(name: str) -> None:
        for key in range(2):
            debounced(name, key)

    # Both callers type at virtual time 0; the timer fires 1 s later, after both.
    schedule.run(lambda: typist("ann"), lambda: typist("bob"))
    assert len(calls) == 1, (
        f"two threads called the debouncer twice each, at the same time: fn must run exactly "
        f"once; it ran {len(calls)} times: {calls} (a call and its timer must be replaced "
        "under one lock)"
    )
    assert calls[0] in [("ann", 1), ("bob", 1)], (
        f"fn ran with {calls[0]}, which is nobody's last call: the last call's arguments win"
    )


@pytest.mark.points(3)
@given(schedules())
def test_a_call_racing_with_the_timer_never_runs_fn_twice_with_the_same_arguments(schedule):
    calls: list[tuple] = []
    debounced = timers.Debouncer(1.0, lambda *args: calls.append(args))

    def late_caller() -> None:
        time.sleep(1.0)  # virtual: exactly when the first call's timer fires
        debounced("late")

    schedule.run(lambda: debounced("early"), late_caller)
    assert calls in ([("late",)], [("early",), ("late",)]), (
        f"a call made just as the timer fired gave the calls {calls}; expected either "
        "[('late',)] (the call came first) or [('early',), ('late',)] (the timer came first). "
        "The firing timer must check, under the lock, that no newer call replaced it"
    )


@pytest.mark.points(2)
@given(schedules())
def test_the_call_runs_exactly_wait_seconds_after_the_last_call(schedule):
    fired_at: list[float] = []
    debounced = timers.Debouncer(2.0, lambda: fired_at.append(time.monotonic()))

    def typist() -> float:
        start = time.monotonic()
        debounced()
        time.sleep(1.5)  # virtual time
        debounced()  # the timer restarts: due 2 s from now
        return start

    (start,) = schedule.run(typist)
    assert [round(t - start, 6) for t in fired_at] == [3.5], (
        f"calls at t=0 and t=1.5 with wait=2: fn must run once, at t=3.5; "
        f"it ran at t={[round(t - start, 3) for t in fired_at]}"
    )
