"""What a drawn schedule can say beyond "preempt at step k", each kind on its own.

Each test runs one hand-written Schedule: the same interleaving on every run,
no luck involved.  See docs/race-tests.md for why each kind is drawn.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings

from pytest_concurrency import Schedule, schedules
from pytest_concurrency.scheduler import _visible
from pytest_concurrency.scheduler._patching import ensure_installed, uninstall


@pytest.fixture
def patched():
    ensure_installed()
    try:
        yield
    finally:
        uninstall()


class Total:
    def __init__(self) -> None:
        self.total = 0
        self.lock = threading.Lock()

    def incr(self) -> None:
        self.total += 1

    def locked_incr(self) -> None:
        with self.lock:
            self.total += 1


def deep_window(schedule: Schedule, unlocked_at: int = 26) -> int:
    """40 increments, all locked but one, against one locked increment."""
    box = Total()

    def loop() -> None:
        for i in range(40):
            if i == unlocked_at:
                box.incr()
            else:
                box.locked_incr()

    schedule.run(loop, box.locked_incr)
    return box.total


def test_visible_operations_are_reads_and_writes_of_shared_state():
    ops = [name for name, _ in _visible.describe(Total.incr.__code__)]
    assert ops == ["LOAD_ATTR", "STORE_ATTR"]
    # `with self.lock:` loads the lock to enter it: not a data access.
    assert [name for name, _ in _visible.describe(Total.locked_incr.__code__)] == ["LOAD_ATTR", "STORE_ATTR"]


def test_at_unlocked_reaches_a_window_deep_in_a_long_run(patched):
    # The only reads and writes made holding no lock are those of iteration 26:
    # the first unlocked access is its read, so preempting there loses an update.
    assert deep_window(Schedule()) == 41
    assert deep_window(Schedule(at_unlocked=[(2, 0)])) == 40
    # The same window by bytecode step is hundreds of steps in.
    schedule = Schedule(at_unlocked=[(2, 0)])
    deep_window(schedule)
    assert schedule.steps > 300


def test_at_visible_counts_synchronisation_points_and_accesses(patched):
    def scenario(schedule: Schedule) -> int:
        box = Total()
        schedule.run(box.locked_incr, box.incr)  # T1: acquire 1, read 2, write 3, release 4
        return box.total

    assert scenario(Schedule(at_visible=[(2, 0)])) == 2  # before T1 reads: T2 runs whole first
    assert scenario(Schedule(at_visible=[(3, 0)])) == 1  # between T1's read and write: lost
    assert scenario(Schedule(at_visible=[(5, 0)])) == 2  # past T1's end: nothing to preempt


def test_at_notifies_chooses_which_waiter_a_notify_wakes(patched):
    def scenario(schedule: Schedule) -> list[str]:
        cond = threading.Condition()
        woken: list[str] = []
        ready = [0]

        def waiter(name: str):
            def wait() -> None:
                with cond:
                    ready[0] += 1
                    cond.wait()
                    woken.append(name)

            return wait

        def notifier() -> None:
            while True:
                with cond:
                    if ready[0] == 2:
                        cond.notify()
                        cond.notify()
                        return

        schedule.run(waiter("first"), waiter("second"), notifier)
        return woken

    assert scenario(Schedule()) == ["first", "second"]  # by default, the longest waiting
    assert scenario(Schedule(at_notifies=[(1, 1)])) == ["second", "first"]


def test_a_hand_off_goes_to_the_thread_that_has_waited_longest(patched):
    order: list[str] = []

    def one(name: str):
        def run() -> None:
            order.append(name + "1")
            order.append(name + "2")

        return run

    # T1 is preempted after its first step of user code, T2 runs whole; when it
    # ends, T3 (ready since the start) goes on before T1 (ready since then).
    Schedule(at_steps=[(2, 0)]).run(one("a"), one("b"), one("c"))
    assert order.index("c1") < order.index("a2")
    # at_handoffs takes the other one.
    order.clear()
    Schedule(at_steps=[(2, 0)], at_handoffs=[(1, 1)]).run(one("a"), one("b"), one("c"))
    assert order.index("a2") < order.index("c1")


def test_a_walk_replays_exactly_and_is_bounded(patched):
    def scenario(schedule: Schedule) -> tuple[int, str]:
        box = Total()
        schedule.run(box.incr, box.incr, box.incr)
        return box.total, schedule.story

    walk = Schedule(walk=(7, 2, 3))
    first = scenario(walk)
    again = scenario(Schedule(walk=(7, 2, 3)))
    assert first == again
    assert walk._last is not None and len(walk._last.walked) <= 3
    assert walk.preemptions <= 3 or walk.walk is not None


@pytest.mark.parametrize(
    "bad",
    [(1, 2), (1, 2, -1), ("a", 2, 3), (1, True, 2)],
)
def test_a_bad_walk_is_refused_with_its_value(bad):
    with pytest.raises(ValueError, match=r"walk=\.\.\.\) takes \(seed, period, most\)"):
        Schedule(walk=bad)


def test_windows_in_two_threads_show_a_counter_going_down(patched):
    """T1 preempted between its read and its write of ``n``, T3 between its two reads:
    the two exact preemptions the observer bug needs, by name, not by position."""
    import scheduler_corpus

    observer = scheduler_corpus.load("observer_sees_decrease")
    schedule = Schedule(windows=((0, 2), 1, 4))
    with pytest.raises(AssertionError, match="went down: read 2, then 1"):
        observer.buggy(schedule)
    assert schedule._last is not None and schedule._last.preemptions_taken == 2
    observer.fixed(Schedule(windows=((0, 2), 1, 4)))  # the locked twin: no window to open


def test_a_window_opens_only_on_a_name_touched_again_in_the_same_slice():
    def incr(box: Total) -> None:
        box.total += 1

    def reads_two_names(box: Total) -> None:
        box.total = box.lock

    assert sorted(_visible.data_keys(incr.__code__).values()) == ["total", "total"]
    keys = list(_visible.data_keys(reads_two_names.__code__).values())
    assert sorted(keys) == ["lock", "total"]  # no name twice: no window


def test_lock_windows_in_four_threads_close_a_lock_order_cycle(patched):
    """Each thread preempted as it takes its second lock holding its first: the three
    (here four) preemptions a four-way deadlock needs, as one window per thread."""
    import scheduler_corpus

    from pytest_concurrency import DeadlockError

    four_way = scheduler_corpus.load("four_way_deadlock")
    with pytest.raises(DeadlockError, match="every live thread is blocked"):
        four_way.buggy(Schedule(lock_windows=((0, 1, 2, 3), 1, 4)))
    four_way.fixed(Schedule(lock_windows=((0, 1, 2, 3), 1, 4)))  # ordered: taken, not cycled
    four_way.buggy(Schedule(windows=((0, 1, 2, 3), 1, 4)))  # data windows: no window there


def test_a_lock_window_opens_between_two_critical_sections_of_one_lock(patched):
    """``with lock: read`` then ``with lock: write`` (one critical section needed): the
    second acquire of the same lock in a slice opens a window; the first does not."""
    lock = threading.Lock()
    box = Total()

    def split_increment() -> None:
        with lock:
            seen = box.total
        with lock:
            box.total = seen + 1

    schedule = Schedule(lock_windows=((0,), 1, 1))
    schedule.run(split_increment, split_increment)
    assert box.total == 1  # T1 preempted between its two sections: T2's increment lost
    assert schedule._last is not None and schedule._last.preemptions_taken == 1
    box.total = 0
    Schedule(lock_windows=((0,), 2, 1)).run(split_increment, split_increment)
    assert box.total == 2  # from the second such window on: T1 has only one


def test_a_lock_window_opens_between_critical_sections_of_two_locks(patched):
    """A total read one account at a time (each under its own lock): a transfer between
    the two sections is counted twice or not at all.  The second acquire in a slice opens
    the window, whichever lock it takes."""
    locks, balances = [threading.Lock(), threading.Lock()], [50, 50]

    def total() -> int:
        seen = 0
        for index, lock in enumerate(locks):
            with lock:
                seen += balances[index]
        return seen

    def transfer() -> None:
        with locks[0], locks[1]:
            balances[0] -= 10
            balances[1] += 10

    seen, _ = Schedule(lock_windows=((0,), 1, 1)).run(total, transfer)
    assert seen == 110  # account 0 read before the transfer, account 1 after
    balances[:] = [50, 50]
    seen, _ = Schedule().run(total, transfer)
    assert seen == 100


@pytest.mark.parametrize("name", ["windows", "lock_windows"])
@pytest.mark.parametrize("bad", [(1, 2), ((0,), -1, 2), (("a",), 1, 1), ((0,), True, 1), 5])
def test_bad_windows_are_refused_with_their_value(bad, name):
    with pytest.raises(ValueError, match=rf"Schedule\({name}=\.\.\.\)"):
        Schedule(**{name: bad})


def test_repr_round_trips_every_kind():
    schedule = Schedule(
        at_steps=[(3, 1)], after_switch=[(2, 0)], at_syncs=[(4, 1)], at_handoffs=[(1, 1)],
        at_visible=[(5, 0)], at_unlocked=[(2, 1)], at_notifies=[(1, 1)], walk=(9, 3, 2),
        windows=((0, 2), 1, 4), lock_windows=((1,), 2, 1), priorities=(7, 16, 2),
    )  # fmt: skip
    assert "lock_windows=((1,), 2, 1)" in repr(schedule)
    assert "priorities=(7, 16, 2)" in repr(schedule)
    assert eval(repr(schedule)) == schedule  # noqa: S307 - what a user pastes into @example


def test_drawn_schedules_find_a_deep_window_by_default():
    found: list[Schedule] = []

    @settings(derandomize=True, database=None, max_examples=200, deadline=None)
    @given(schedules())
    def search(schedule: Schedule) -> None:
        if deep_window(schedule) != 41:
            found.append(schedule)
            raise AssertionError("lost")

    with pytest.raises(AssertionError):
        search()
    assert found


def test_a_priority_schedule_runs_the_highest_priority_thread_until_a_change_point(patched):
    """PCT over visible operations: with no change point, the thread of highest priority
    runs each of its steps before any other; a change point drops it below the others."""
    order: list[str] = []
    box = Total()

    def worker(name: str):
        def run() -> None:
            for _ in range(3):
                box.total += 1  # visible: where priorities are looked at
                order.append(name)

        return run

    Schedule(priorities=(5, 8, 0)).run(worker("a"), worker("b"))
    assert order in (["a"] * 3 + ["b"] * 3, ["b"] * 3 + ["a"] * 3)
    interleaved = 0
    for seed in range(20):
        order.clear()
        Schedule(priorities=(seed, 8, 1)).run(worker("a"), worker("b"))
        interleaved += order not in (["a"] * 3 + ["b"] * 3, ["b"] * 3 + ["a"] * 3)
        assert sorted(order) == ["a"] * 3 + ["b"] * 3
    assert interleaved, "no change point came to pass in 20 seeds"


def test_a_priority_schedule_replays_and_finds_a_four_way_deadlock(patched):
    import scheduler_corpus

    from pytest_concurrency import DeadlockError

    four_way = scheduler_corpus.load("four_way_deadlock")
    found = []
    for seed in range(100):
        try:
            four_way.buggy(Schedule(priorities=(seed, 8, 2)))
        except DeadlockError:
            found.append(seed)
    assert found, "no priority schedule of depth 3 closed the cycle in 100 seeds"
    with pytest.raises(DeadlockError):
        four_way.buggy(Schedule(priorities=(found[0], 8, 2)))  # the same seed, the same run
    four_way.fixed(Schedule(priorities=(found[0], 8, 2)))


@pytest.mark.parametrize("bad", [(1, 0, 1), (1, 8), (-1, 8, 1), (1, 8, True), "x"])
def test_bad_priorities_are_refused_with_their_value(bad):
    with pytest.raises(ValueError, match=r"Schedule\(priorities=\.\.\.\)"):
        Schedule(priorities=bad)
