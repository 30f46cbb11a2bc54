"""The controlled scheduler and schedules(): plain tests of the engine.

Race tests here never sleep and hope: every interleaving comes from a
Schedule, so each test gives the same result on every run.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import os
import queue
import re
import socket
import sys
import threading
import time
from time import sleep as SLEEP_IMPORTED_AT_IMPORT_TIME  # noqa: N812  (a test of exactly this)

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_concurrency import DeadlockError, LivelockError, Schedule, explore_all, schedules
from pytest_concurrency.scheduler._patching import ensure_installed, installed, uninstall


@pytest.fixture
def patched():
    """Plain tests make their objects before run(): put the patches in first, as a draw does."""
    ensure_installed()
    try:
        yield
    finally:
        uninstall()


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> None:
        self.n += 1


class LockedCounter:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def incr(self) -> None:
        with self.lock:
            self.n += 1


def failing_schedule(scenario, max_examples: int = 200) -> Schedule | None:
    """The first schedule (of at most max_examples) for which scenario(schedule) fails."""
    found: list[Schedule] = []

    @settings(max_examples=max_examples, database=None, derandomize=True, deadline=None)
    @given(schedules())
    def explore(schedule):
        try:
            scenario(schedule)
        except AssertionError:
            found.append(schedule)
            raise

    try:
        explore()
    except AssertionError:
        return found[0]
    return None


# ---------------------------------------------------------------- races


def lost_update(schedule: Schedule) -> None:
    counter = Counter()
    schedule.run(counter.incr, counter.incr)
    assert counter.n == 2


def test_a_lost_update_is_found():
    assert failing_schedule(lost_update) is not None


def test_a_locked_counter_never_loses_an_update():
    def scenario(schedule):
        counter = LockedCounter()
        schedule.run(counter.incr, counter.incr, counter.incr)
        assert counter.n == 3

    assert failing_schedule(scenario, max_examples=150) is None


def test_the_found_schedule_replays_the_same_way(patched):
    schedule = failing_schedule(lost_update)
    assert schedule is not None
    stories = []
    for _ in range(5):
        counter = Counter()
        schedule.run(counter.incr, counter.incr)
        assert counter.n == 1
        stories.append(schedule.story)
    assert len(set(stories)) == 1


def test_x_plus_equals_one_is_preempted_between_read_and_write(patched):
    # The no-preemption schedule keeps each increment whole...
    counter = Counter()
    Schedule().run(counter.incr, counter.incr)
    assert counter.n == 2
    # ...and some single preemption inside the first increment loses one.
    outcomes = set()
    for step in range(1, 15):
        counter = Counter()
        Schedule([(step, 0)]).run(counter.incr, counter.incr)
        outcomes.add(counter.n)
    assert outcomes == {1, 2}


def test_threads_started_inside_run_are_controlled_too():
    def scenario(schedule):
        counter = Counter()

        def start_two():
            workers = [threading.Thread(target=counter.incr) for _ in range(2)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

        schedule.run(start_two)
        assert counter.n == 2

    assert failing_schedule(scenario) is not None


# -------------------------------------------------------------- results


def test_run_returns_the_results_in_order(patched):
    assert Schedule().run(lambda: 1, lambda: "two", lambda: None) == [1, "two", None]


def test_an_exception_in_a_thread_is_raised_by_run_with_the_thread_named(patched):
    def boom():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as caught:
        Schedule().run(lambda: 1, boom)
    assert any("T2 (" in note and "boom" in note for note in caught.value.__notes__)


def test_a_non_callable_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match=r"argument 2 is 42 \(int\)"):
        Schedule().run(print, 42)


def test_run_inside_run_is_a_clear_error(patched):
    def nested():
        Schedule().run(print)

    with pytest.raises(RuntimeError, match="inside schedule.run"):
        Schedule().run(nested)


# ------------------------------------------------------------ deadlocks


def abba(first: threading.Lock, second: threading.Lock):
    def take_both():
        with first, second:
            pass

    return take_both


def test_an_abba_deadlock_is_found_and_explained():
    messages: list[str] = []

    def scenario(schedule):
        a, b = threading.Lock(), threading.Lock()
        try:
            schedule.run(abba(a, b), abba(b, a))
        except DeadlockError as error:
            messages.append(str(error))
            raise AssertionError("deadlock") from None

    assert failing_schedule(scenario) is not None
    message = messages[-1]
    assert "cycle: thread 'T1" in message
    assert "holds `first` (Lock#" in message and re.search(r"waits for `second` \(Lock#\d+ made at [^)]*\) in Lock.acquire\(\)", message)
    assert "test_scheduler.py" in message and "with first, second:" in message


def test_every_thread_blocked_is_a_deadlock_at_once(patched):
    event = threading.Event()
    started = time.monotonic()
    with pytest.raises(DeadlockError, match=r"Event.wait\(\)"):
        Schedule().run(event.wait, event.wait)
    assert time.monotonic() - started < 5  # no timeout involved


def test_a_lost_wakeup_is_a_deadlock_without_cycle(patched):
    cond = threading.Condition()

    def waiter():
        with cond:
            cond.wait()

    with pytest.raises(DeadlockError, match="no cycle"):
        Schedule().run(waiter)


def test_no_thread_is_left_behind_after_a_deadlock(patched):
    before = set(threading.enumerate())
    a, b = threading.Lock(), threading.Lock()
    for step in range(1, 30):
        with contextlib.suppress(DeadlockError):
            Schedule([(step, 0)]).run(abba(a, b), abba(b, a))
        assert not a.locked() and not b.locked()
    assert set(threading.enumerate()) == before


# ------------------------------------------------------------ livelocks


def test_a_thread_spinning_forever_is_a_livelock(patched):
    def spin():
        while True:
            pass

    with pytest.raises(LivelockError, match=r"loops at (tests/)?test_scheduler.py:\d+ in spin: while True:"):
        Schedule(max_steps=20_000).run(spin)


def test_busy_waiting_for_a_blocked_thread_is_a_livelock(patched):
    lock = threading.Lock()
    flag = []

    def holder():
        with lock:
            while not flag:
                pass

    def setter():
        with lock:
            flag.append(1)

    with pytest.raises(LivelockError, match="spinning"):
        Schedule().run(holder, setter)


def test_long_honest_work_while_the_others_wait_is_not_a_livelock(patched):
    lock = threading.Lock()

    def work():
        with lock:
            total = 0
            for i in range(10_000):  # about 70,000 steps, alone
                total += i
            return total

    def wait():
        with lock:
            return "waited"

    assert Schedule().run(work, wait) == [sum(range(10_000)), "waited"]


# ---------------------------------------------------------- primitives


def test_virtual_time_sleepers_wake_in_deadline_order_at_no_real_cost(patched):
    woke: list[tuple[int, float]] = []

    def sleeper(seconds):
        def sleep():
            start = time.monotonic()
            time.sleep(seconds)
            woke.append((seconds, round(time.monotonic() - start, 6)))

        return sleep

    started = time.perf_counter()
    Schedule().run(sleeper(30), sleeper(10), sleeper(20))
    assert time.perf_counter() - started < 5
    assert woke == [(10, 10.0), (20, 20.0), (30, 30.0)]


def test_condition_notify_wakes_waiters_first_come_first_served(patched):
    cond = threading.Condition()
    waiting: list[str] = []
    woken: list[str] = []

    def waiter(name):
        def wait():
            with cond:
                waiting.append(name)
                cond.wait()
                woken.append(name)

        return wait

    def notifier():
        while len(waiting) < 3:
            time.sleep(0.01)
        for _ in range(3):
            with cond:
                cond.notify()

    Schedule([(1, 2), (20, 1)]).run(waiter("a"), waiter("b"), waiter("c"), notifier)
    assert woken == waiting


def test_event_semaphore_barrier_timer_and_queue_work_inside_run(patched):
    barrier = threading.Barrier(2)
    event = threading.Event()
    semaphore = threading.BoundedSemaphore(1)
    items: queue.Queue = queue.Queue()
    seen: list[object] = []

    def first():
        barrier.wait()
        event.wait()
        with semaphore:
            seen.append(items.get(timeout=5))

    def second():
        barrier.wait()
        timer = threading.Timer(3, items.put, args=["from the timer"])
        timer.start()
        event.set()
        timer.join()

    Schedule().run(first, second)
    assert seen == ["from the timer"]


def test_timeouts_run_on_the_virtual_clock(patched):
    items: queue.Queue = queue.Queue()
    lock = threading.Lock()
    results = []

    def waits():
        start = time.monotonic()
        with pytest.raises(queue.Empty):
            items.get(timeout=2)
        results.append(lock.acquire(timeout=1))
        results.append(round(time.monotonic() - start, 6))

    def holds():
        lock.acquire()

    Schedule().run(holds, waits)
    assert results == [False, 3.0]


def test_a_thread_pool_with_futures_runs_under_control(patched):
    import concurrent.futures

    def work():
        future: concurrent.futures.Future = concurrent.futures.Future()
        worker = threading.Thread(target=lambda: future.set_result(42))
        worker.start()
        return future.result(timeout=5)

    assert Schedule([(2, 0)]).run(work, work) == [42, 42]


# ------------------------------------------------ only inside run, only for us


def test_primitives_made_before_run_behave_as_real_ones_outside_it(patched):
    counter = LockedCounter()
    workers = [threading.Thread(target=counter.incr) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counter.n == 4
    Schedule().run(counter.incr)
    assert counter.n == 5


def test_the_patches_are_gone_after_a_plain_run():
    original = threading.Lock
    Schedule().run(lambda: None)
    assert threading.Lock is original
    assert not installed()


def test_real_io_inside_run_is_a_clear_error(patched):
    def connect():
        socket.create_connection(("127.0.0.1", 9), timeout=1)

    with pytest.raises(RuntimeError, match="real blocking calls are outside the scheduler"):
        Schedule().run(connect)


# --------------------------------------------------------- hypothesis


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_objects_made_in_the_test_body_are_controlled(schedule):
    counter = LockedCounter()
    schedule.run(counter.incr, counter.incr)
    assert counter.n == 2


# ------------------------------------------------------------ determinism


def fresh_counter_class() -> type:
    """A class whose code objects have never run: the first-execution trap."""
    namespace: dict = {}
    exec(
        compile(
            "class Counter:\n"
            "    def __init__(self):\n"
            "        self.n = 0\n"
            "    def incr(self):\n"
            "        for _ in range(3):\n"
            "            self.n += 1\n",
            "<fresh counter>",
            "exec",
        ),
        namespace,
    )
    return namespace["Counter"]


@pytest.mark.parametrize("at_steps", [[], [(4, 0)], [(2, 0), (9, 0), (17, 0)]])
def test_a_first_execution_gives_the_same_steps_as_later_ones(patched, at_steps):
    # sys.settrace on 3.12+ gives no opcode events on a function's first run,
    # which would make a replay differ from the run it replays.
    traces = []
    results = []
    for _ in range(3):
        counter = fresh_counter_class()()
        schedule = Schedule(at_steps)
        schedule.run(counter.incr, counter.incr)
        traces.append(schedule.story)
        results.append(counter.n)
    assert traces[0] == traces[1] == traces[2]
    assert len(set(results)) == 1


def test_the_same_schedule_gives_the_same_interleaving_under_load(patched):
    # Real threads compete for the CPU meanwhile: the interleaving must not care.
    stop = threading.Event()

    def burn():
        while not stop.is_set():
            sum(range(1000))

    burners = [threading.Thread(target=burn) for _ in range(2)]
    for burner in burners:
        burner.start()
    try:
        stories = set()
        for _ in range(10):
            counter = LockedCounter()
            schedule = Schedule(at_steps=[(3, 0)], after_switch=[(2, 1)], at_syncs=[(2, 0)])
            schedule.run(counter.incr, counter.incr, counter.incr)
            stories.add(schedule.story)
    finally:
        stop.set()
        for burner in burners:
            burner.join()
    assert len(stories) == 1


# ------------------------------------------------------ uncontrolled blocking


def test_a_thread_stuck_outside_the_schedulers_control_is_reported_not_hung(patched):
    import _thread

    from pytest_concurrency.scheduler._engine import Scheduler, UncontrolledBlockingError

    def story_of_a_run() -> str:
        counter = LockedCounter()
        schedule = Schedule(after_switch=[(2, 0)])
        schedule.run(counter.incr, counter.incr)
        return schedule.story

    before = story_of_a_run()
    held = _thread.allocate_lock()  # the interpreter's own lock: the scheduler can't see it
    held.acquire()
    woke = threading.Event()

    def stuck():
        held.acquire()
        woke.set()
        for _ in range(100):  # steps that must not count in any later run
            pass

    scheduler = Scheduler(stall_timeout=1.0)
    started = time.perf_counter()
    with pytest.raises(UncontrolledBlockingError, match=r"stuck for 1 s at (tests/)?test_scheduler.py:\d+ in stuck: held.acquire()"):
        scheduler.run([stuck])
    assert time.perf_counter() - started < 30
    # Once free, the stuck thread is unwound (3.10/3.11) or goes on as an ordinary
    # thread (3.12+); either way it takes no part in later runs.
    held.release()
    woke.wait(1)
    assert [story_of_a_run() for _ in range(3)] == [before] * 3


@pytest.mark.skipif(sys.version_info < (3, 13), reason="time.sleep is audited from 3.13")
def test_sleep_imported_before_the_test_is_a_clear_error(patched):
    with pytest.raises(RuntimeError, match="from time import sleep"):
        Schedule().run(lambda: SLEEP_IMPORTED_AT_IMPORT_TIME(0.001))


# ------------------------------------------------------- exhaustive search


def test_explore_all_finds_the_lost_update_with_the_fewest_preemptions():
    from pytest_concurrency import explore_all

    with pytest.raises(AssertionError) as caught:
        explore_all(lost_update, max_preemptions=2)
    notes = "\n".join(caught.value.__notes__)
    assert "1 preemption(s)" in notes and "Interleaving" in notes


def test_explore_all_exhausts_the_space_of_a_correct_scenario_the_same_way_every_time():
    from pytest_concurrency import explore_all

    def scenario(schedule):
        counter = LockedCounter()
        schedule.run(counter.incr, counter.incr)
        assert counter.n == 2

    first = explore_all(scenario, max_preemptions=2)
    second = explore_all(scenario, max_preemptions=2)
    assert first.exhausted and first.schedules == second.schedules > 50
    assert str(first).startswith(f"explored all {first.schedules:,} schedules with at most 2")


def test_explore_all_says_when_it_stopped_before_the_end():
    from pytest_concurrency import explore_all

    def scenario(schedule):
        counter = LockedCounter()
        schedule.run(counter.incr, counter.incr)

    result = explore_all(scenario, max_preemptions=2, max_schedules=10)
    assert (result.schedules, result.exhausted) == (10, False)
    assert "NOT exhausted" in str(result)


def test_explore_all_tries_every_thread_that_could_go_on_when_one_blocks_or_ends():
    def scenario(schedule):
        woken: list[str] = []
        event = threading.Event()

        def waiter(name):
            def wait():
                event.wait()
                woken.append(name)

            return wait

        schedule.run(waiter("first"), waiter("second"), event.set)
        assert woken == ["first", "second"], "the second waiter went on first"

    # No preemption is needed: when the setter ends, either waiter may go on.
    with pytest.raises(AssertionError, match="second waiter went on first") as caught:
        explore_all(scenario, max_preemptions=0)
    assert "Schedule(at_handoffs=" in "\n".join(caught.value.__notes__)
    assert "0 preemption(s)" in "\n".join(caught.value.__notes__)


def test_a_handoff_choice_replays_by_hand(patched):
    woken: list[int] = []
    event = threading.Event()

    def waiter(number):
        return lambda: (event.wait(), woken.append(number))

    # Hand-offs with a choice: T1 blocks (T2, T3, T4 could go on), T2 blocks
    # (T3, T4), and the setter ends (T1, T2, T3): there, the second one.
    Schedule(at_handoffs=[(3, 1)]).run(waiter(1), waiter(2), waiter(3), event.set)
    assert woken == [2, 1, 3]


def test_explore_all_rejects_bad_arguments():
    from pytest_concurrency import explore_all

    with pytest.raises(TypeError, match="callable scenario"):
        explore_all(42)
    with pytest.raises(ValueError, match="max_preemptions"):
        explore_all(lost_update, max_preemptions=-1)


# ------------------------------------------------------- thread identity


MODULE_LOCAL = threading.local()  # made at import time: the C implementation


def test_each_run_starts_with_fresh_thread_local_state(patched):
    def remember():
        seen = getattr(MODULE_LOCAL, "value", None)
        MODULE_LOCAL.value = "set"
        return seen

    assert Schedule().run(remember, remember) == [None, None]
    assert Schedule().run(remember, remember) == [None, None]


class LocalWithDefault(threading.local):
    def __init__(self, default: str) -> None:
        self.value = default


MODULE_LOCAL_WITH_INIT = LocalWithDefault("fresh")  # __init__ runs again in each new thread
CONTEXT_VALUE: contextvars.ContextVar[str] = contextvars.ContextVar("CONTEXT_VALUE", default="fresh")


def test_threads_are_fresh_in_every_run_though_the_os_threads_are_kept(patched):
    def use_and_change():
        seen = (MODULE_LOCAL_WITH_INIT.value, CONTEXT_VALUE.get())
        MODULE_LOCAL_WITH_INIT.value = "changed"
        CONTEXT_VALUE.set("changed")
        return seen

    for _ in range(5):
        assert Schedule().run(use_and_change, use_and_change) == [("fresh", "fresh")] * 2
    # The test's own thread is not one of them.
    assert MODULE_LOCAL_WITH_INIT.value == "fresh" and CONTEXT_VALUE.get() == "fresh"


def test_a_kept_thread_owns_its_reference_to_its_thread_state_dict(patched):
    from pytest_concurrency.scheduler import _workers

    Schedule().run(lambda: None)
    if not _workers.reusable():  # 3.13 keeps thread-locals elsewhere: a new thread per callable
        pytest.skip("this interpreter's thread-locals are not in the thread state's dict")
    worker = _workers._idle[-1]
    # The thread state's reference, the worker's, and getrefcount's argument: with
    # one fewer the dict is freed under the thread and the interpreter crashes
    # at exit (it did).
    assert sys.getrefcount(worker._tstate_dict) >= 3


def test_where_kept_threads_cannot_be_made_fresh_each_callable_gets_a_new_thread(patched, monkeypatch):
    from pytest_concurrency.scheduler import _workers

    monkeypatch.setattr(_workers, "_reuse", False)  # as if dropping the keys did not empty a local
    monkeypatch.setattr(_workers, "_idle", [])
    idents = set()

    def use_and_change():
        idents.add(threading.get_ident())
        seen = MODULE_LOCAL_WITH_INIT.value
        MODULE_LOCAL_WITH_INIT.value = "changed"
        return seen

    for _ in range(3):
        assert Schedule().run(use_and_change, use_and_change) == ["fresh", "fresh"]
    assert _workers._idle == []  # none kept
    assert len(idents) >= 2  # and not one thread for both callables of a run


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux and two CPUs",
)
def test_a_run_keeps_its_threads_on_one_cpu_and_gives_the_caller_its_cpus_back(patched):
    before = os.sched_getaffinity(0)

    def where():
        worker = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        worker.start()
        worker.join()
        return os.sched_getaffinity(0)

    seen: list[set[int]] = []
    first, second = Schedule(at_steps=[(3, 0)]).run(where, where)
    assert len(first) == 1 and first == second == seen[0] == seen[1]  # started threads too
    assert os.sched_getaffinity(0) == before


def test_a_finished_run_is_freed_at_once_not_by_the_garbage_collector(patched):
    import gc

    counter = Counter()
    for i in range(3):  # warm: caches filled, threads kept
        Schedule(after_switch=[(i, 0)]).run(counter.incr, counter.incr)
    gc.collect()
    gc.disable()
    try:
        for i in range(20):
            counter = Counter()
            schedule = Schedule(after_switch=[(i, 0)])
            schedule.run(counter.incr, counter.incr)
            assert schedule.story  # what a run keeps for its story is still there
        # Cycles would be left to the collector, which then costs every later
        # example of a Hypothesis test a share of a full collection.  (Only the
        # run's own objects count: other threads of this process make garbage too.)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = {type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("pytest_concurrency")}
        assert left == set()
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_run_reads_no_audited_attribute_for_library_code_and_calls_no_id(patched):
    events: list[str] = []
    recording = [False]

    def hook(event: str, args: tuple) -> None:
        if recording[0] and event in ("builtins.id", "object.__getattr__"):
            events.append(event if event == "builtins.id" else f"{event} {args[1]}")

    sys.addaudithook(hook)  # for good: audit hooks cannot be removed; it only counts while recording
    counter = Counter()
    lock = threading.Lock()

    def locked_incr() -> None:
        with lock:  # the controlled Lock's methods are library frames, called from user code
            counter.n += 1

    Schedule().run(locked_incr, locked_incr)  # warm: import-time lookups cached
    recording[0] = True
    Schedule(at_steps=[(2, 0)]).run(locked_incr, locked_incr)
    recording[0] = False
    # Each audited event costs a microsecond with any audit hook in, and one is
    # in for the rest of the session once a run has been: only the user frames'
    # code is read, once per call (3.10/3.11; sys.monitoring reads none), and
    # nothing calls id().
    assert set(events) <= {"object.__getattr__ f_code"} and len(events) <= 2, events


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12+")
def test_monitoring_stays_armed_between_runs_while_the_patches_are_in():
    from pytest_concurrency.scheduler import _tracing

    def armed() -> bool:
        tool = _tracing._monitoring_tool
        return tool is not None and sys.monitoring.get_events(tool) != 0

    Schedule().run(lambda: None)  # patches put in and taken out by the run itself
    assert not armed()
    ensure_installed()  # as a schedule test does from its first draw to its end
    try:
        first = Schedule()
        first.run(Counter().incr, Counter().incr)
        # Switching events off and on again would make the interpreter instrument
        # every function it runs next anew: Hypothesis's, between every two runs.
        assert armed()
        again = Schedule()
        again.run(Counter().incr, Counter().incr)
        assert again.steps == first.steps > 0 and armed()  # and the events still come
    finally:
        uninstall()
    assert not armed()


def test_the_interpreter_exits_cleanly_after_many_runs(tmp_path):
    import subprocess

    script = tmp_path / "many_runs.py"
    script.write_text(
        "from pytest_concurrency import Schedule\n"
        "for _ in range(3000):\n"
        "    Schedule().run(lambda: None, lambda: None)\n"
    )
    done = subprocess.run([sys.executable, "-X", "dev", str(script)], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Forking with threads alive is the point (3.12+ warn of it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_runs_schedules_without_the_parents_kept_threads(patched):
    counter = LockedCounter()
    Schedule().run(counter.incr, counter.incr)  # the parent now keeps two threads
    pid = os.fork()
    if pid == 0:  # the child: those threads do not exist here
        code = 1
        try:
            child_counter = LockedCounter()
            Schedule().run(child_counter.incr, child_counter.incr)
            code = 0 if child_counter.n == 2 else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's schedule.run() hung")
    assert os.waitstatus_to_exitcode(status) == 0


def test_current_thread_names_the_callables_thread(patched):
    def who():
        thread = threading.current_thread()
        return thread.name, thread.is_alive(), thread.ident == threading.get_ident()

    assert Schedule().run(who, who) == [("T1", True, True), ("T2", True, True)]


def test_helper_threads_blocked_for_good_after_the_callables_returned(patched):
    jobs: queue.Queue = queue.Queue()

    def start_worker(daemon):
        def start():
            threading.Thread(target=jobs.get, daemon=daemon).start()

        return start

    # A daemon worker waiting for a job that never comes is unwound quietly...
    assert Schedule().run(start_worker(daemon=True)) == [None]
    # ...a non-daemon one would keep a real program from exiting.
    with pytest.raises(DeadlockError, match="the callables returned, but 1 thread"):
        Schedule().run(start_worker(daemon=False))


def test_started_threads_have_the_same_names_in_every_replay(patched):
    def start_one():
        worker = threading.Thread(target=lambda: None)
        worker.start()
        worker.join()

    stories = set()
    for _ in range(3):
        schedule = Schedule()
        schedule.run(start_one)
        stories.add(schedule.story)
    assert len(stories) == 1 and "Thread-1 (<lambda>)" in stories.pop()


# ------------------------------------------------- how waits are named


def test_a_deadlock_names_each_wait_by_the_primitives_kind():
    def scenario(schedule):
        a, b = threading.RLock(), threading.RLock()
        schedule.run(abba(a, b), abba(b, a))

    with pytest.raises(DeadlockError) as caught:
        explore_all(scenario, max_preemptions=1)
    message = str(caught.value)
    assert re.search(r"waits for `second` \(RLock#\d+ made at [^)]*\) in RLock.acquire\(\)", message), message
    assert "Lock.acquire()" not in message.replace("RLock.acquire()", "")
    assert "_ControlledLockBase" not in message


# ------------------------------------------------------------ the API


def test_schedules_is_the_function_in_the_plugins_own_process():
    import types

    import pytest_concurrency

    assert isinstance(pytest_concurrency.schedules, types.FunctionType)
    assert pytest_concurrency.schedules is schedules


@pytest.mark.parametrize(
    "imports",
    [
        "import pytest_concurrency.scheduler\nimport pytest_concurrency",
        "from pytest_concurrency.scheduler import Schedule, explore_all\nimport pytest_concurrency",
        "import pytest_concurrency\nimport pytest_concurrency.scheduler.strategy",
        "import pytest_concurrency.plugin\nimport pytest_concurrency.scheduler.plugin\nimport pytest_concurrency",
    ],
)
def test_every_documented_import_gives_the_function(imports):
    import subprocess

    program = (
        f"{imports}\n"
        "import types\n"
        "from pytest_concurrency import schedules\n"
        "from pytest_concurrency import Schedule, explore_all\n"
        "assert isinstance(schedules, types.FunctionType), schedules\n"
        "assert pytest_concurrency.schedules is schedules\n"
        "strategy = pytest_concurrency.schedules(max_preemptions=1)\n"
        "assert Schedule([(1, 0)]).run(lambda: 1, lambda: 2) == [1, 2]\n"
        "print('ok', type(strategy).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


# ------------------------------------------------- locks made at import time


def test_a_module_level_lock_made_at_import_time_is_controlled_inside_run():
    from scheduler_corpus import _import_time_locks as code

    from pytest_concurrency.scheduler._primitives import Lock as ControlledLock

    original = code.LOCK
    assert not isinstance(original, ControlledLock)  # made before schedules() patched threading

    def scenario(schedule):
        code.total = 0
        schedule.run(code.add_one, code.add_one)
        assert code.total == 2

    started = time.perf_counter()
    assert explore_all(scenario, max_preemptions=2).exhausted
    assert time.perf_counter() - started < 5  # never the 10 s of a thread stuck for real
    assert code.LOCK is original  # put back after each run
    assert not code.LOCK.locked()


def test_import_time_locks_taken_in_opposite_orders_are_a_deadlock_not_a_hang():
    from scheduler_corpus import _import_time_locks as code

    def scenario(schedule):
        schedule.run(code.first_then_second, code.second_then_first)

    started = time.perf_counter()
    with pytest.raises(DeadlockError, match=r"cycle: thread 'T\d") as caught:
        explore_all(scenario, max_preemptions=1)
    assert time.perf_counter() - started < 5
    assert "`FIRST`" in str(caught.value) and "`SECOND`" in str(caught.value)
    assert not code.FIRST.locked() and not code.SECOND.locked()


def test_a_class_level_rlock_made_at_import_time_is_controlled_inside_run():
    from scheduler_corpus import _import_time_locks as code

    original = code.Account.lock

    def scenario(schedule):
        account = code.Account()
        schedule.run(functools.partial(account.deposit, 1), functools.partial(account.deposit, 2))
        assert account.balance == 3

    assert explore_all(scenario, max_preemptions=2).exhausted
    assert code.Account.lock is original


def test_primitives_made_at_import_time_keep_their_state_and_are_controlled_inside_run():
    from scheduler_corpus import _import_time_primitives as code

    insides = (code.READY._cond, code.SLOTS._cond, code.MEETING._cond, code.JOBS.mutex)
    condition = code.ITEMS_CHANGED

    def scenario(schedule):
        code.READY.clear()
        code.shared.clear()
        code.items.clear()
        code.MEETING.reset()
        assert schedule.run(code.publish, code.read_when_ready)[1] == 42
        schedule.run(code.add_under_semaphore, code.add_under_semaphore)
        assert code.shared["total"] == 2
        assert schedule.run(code.put_item, code.take_item)[1] == 1
        assert sorted(schedule.run(code.meet, code.meet)) == [0, 1]
        assert schedule.run(code.produce, code.consume)[1] == [0, 1, 2]

    started = time.perf_counter()
    assert explore_all(scenario, max_preemptions=1).exhausted
    assert time.perf_counter() - started < 10  # never the 10 s of a thread stuck for real
    # Put back after each run, with the state the run left.
    assert (code.READY._cond, code.SLOTS._cond, code.MEETING._cond, code.JOBS.mutex) == insides
    assert code.ITEMS_CHANGED is condition and code.READY.is_set()
    assert code.SLOTS.acquire(blocking=False)  # the count the runs left: one free slot
    code.SLOTS.release()


def test_a_race_behind_an_import_time_semaphore_is_found():
    from scheduler_corpus import _import_time_primitives as code

    def scenario(schedule):
        code.shared.clear()
        schedule.run(code.unguarded_add, code.unguarded_add)
        assert code.shared["total"] == 2, "lost update"

    with pytest.raises(AssertionError, match="lost update"):
        explore_all(scenario, max_preemptions=1)
    assert code.TWO_AT_A_TIME._value == 2  # every slot given back, after the failing run too


@dataclasses.dataclass
class _Point:
    """A dataclass of user code: its ``__init__`` is made by ``exec`` (``<string>``)."""

    x: int
    y: int


def test_code_made_by_exec_is_user_code_only_if_its_module_is(patched):
    """A dataclass's ``__init__`` comes from ``exec``: the plugin's (a linearizability
    ``Call``) is not stepped through, a test module's is (3.12+ decide per code object)."""
    from pytest_concurrency.linearizability import Call

    def made(factory) -> set[str]:
        schedule = Schedule()
        schedule.run(factory, lambda: None)
        assert schedule._last is not None
        return {code.co_name for _, code, _, _ in schedule._last.trace
                if code is not None and code.co_filename.startswith("<")}

    assert made(lambda: Call(1, "get", (), 0, None)) == set()
    assert made(lambda: _Point(1, 2)) == {"__init__"}
