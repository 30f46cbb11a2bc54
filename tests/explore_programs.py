"""Small concurrent programs for explore_all: its tests and benchmarks/bench_explore.py.

Each program takes a Schedule, runs its threads with ``schedule.run`` and
returns its outcome (something hashable); a deadlock or an exception is an
outcome too, as ``outcome_of`` records it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from pytest_concurrency import DeadlockError, Schedule

Program = Callable[[Schedule], Any]

SHARED_TOTAL = 0  # for the race on a global


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> None:
        self.n += 1


def lost_update(schedule: Schedule) -> Any:
    counter = Counter()
    schedule.run(counter.incr, counter.incr)
    return counter.n


def lost_update_three(schedule: Schedule) -> Any:
    counter = Counter()
    schedule.run(counter.incr, counter.incr, counter.incr)
    return counter.n


def locked_counter(schedule: Schedule) -> Any:
    counter = Counter()
    lock = threading.Lock()

    def incr() -> None:
        with lock:
            counter.n += 1

    schedule.run(incr, incr)
    return counter.n


def check_then_act(schedule: Schedule) -> Any:
    table: dict[str, str] = {}

    def claim(name: str) -> Callable[[], bool]:
        def run() -> bool:
            if "key" not in table:
                table["key"] = name
                return True
            return False

        return run

    won = schedule.run(claim("a"), claim("b"))
    return tuple(won), table["key"]


def lock_too_narrow(schedule: Schedule) -> Any:
    lock = threading.Lock()
    account = {"balance": 100}

    def withdraw() -> bool:
        with lock:
            enough = account["balance"] >= 60
        if enough:
            with lock:
                account["balance"] -= 60
        return enough

    paid = schedule.run(withdraw, withdraw)
    return tuple(paid), account["balance"]


def abba(schedule: Schedule) -> Any:
    a, b = threading.Lock(), threading.Lock()

    def one() -> None:
        with a, b:
            pass

    def two() -> None:
        with b, a:
            pass

    schedule.run(one, two)
    return "ok"


def dining(schedule: Schedule) -> Any:
    forks = [threading.Lock() for _ in range(3)]
    eaten = []

    def philosopher(number: int) -> Callable[[], None]:
        def dine() -> None:
            with forks[number], forks[(number + 1) % 3]:
                eaten.append(number)

        return dine

    schedule.run(philosopher(0), philosopher(1), philosopher(2))
    return len(eaten)


def dining_ordered(schedule: Schedule) -> Any:
    forks = [threading.Lock() for _ in range(3)]
    eaten = []

    def philosopher(number: int) -> Callable[[], None]:
        first, second = sorted((number, (number + 1) % 3))

        def dine() -> None:
            with forks[first], forks[second]:
                eaten.append(number)

        return dine

    schedule.run(philosopher(0), philosopher(1), philosopher(2))
    return len(eaten)


def condition_handoff(schedule: Schedule) -> Any:
    cond = threading.Condition()
    box: list[int] = []

    def consumer() -> int:
        with cond:
            while not box:
                cond.wait()
            return box.pop()

    def producer() -> None:
        with cond:
            box.append(7)
            cond.notify()

    return tuple(schedule.run(consumer, producer))


def lost_wakeup(schedule: Schedule) -> Any:
    cond = threading.Condition()
    ready = {"flag": False}

    def waiter() -> str:
        if not ready["flag"]:  # checked outside the lock: the notify can come in between
            with cond:
                cond.wait(timeout=5)
        return "woken" if ready["flag"] else "missed"

    def setter() -> None:
        ready["flag"] = True
        with cond:
            cond.notify()

    return tuple(schedule.run(waiter, setter))


def semaphore_guard(schedule: Schedule) -> Any:
    slots = threading.Semaphore(1)
    counter = Counter()

    def enter() -> None:
        with slots:
            counter.n += 1

    schedule.run(enter, enter)
    return counter.n


def semaphore_released_twice(schedule: Schedule) -> Any:
    slots = threading.BoundedSemaphore(1)

    def careless() -> None:
        slots.acquire()
        slots.release()

    def twice() -> None:
        slots.acquire()
        slots.release()
        slots.release()

    schedule.run(careless, twice)
    return "ok"


def queue_order(schedule: Schedule) -> Any:
    items: queue.Queue[int] = queue.Queue()
    got: list[int] = []

    def producer(first: int) -> Callable[[], None]:
        def put() -> None:
            items.put(first)

        return put

    def consumer() -> None:
        got.append(items.get())
        got.append(items.get())

    schedule.run(producer(1), producer(2), consumer)
    return tuple(got)


def event_gate(schedule: Schedule) -> Any:
    gate = threading.Event()
    seen: list[str] = []

    def runner(name: str) -> Callable[[], None]:
        def run() -> None:
            gate.wait()
            seen.append(name)

        return run

    schedule.run(runner("a"), runner("b"), gate.set)
    return tuple(seen)


def independent(schedule: Schedule) -> Any:
    def work() -> int:
        total = 0
        for number in range(4):
            total = total + number  # (``+=`` may mutate a list in place: the model counts it a write)
        return total

    return tuple(schedule.run(work, work, work))


def independent_objects(schedule: Schedule) -> Any:
    counters = [Counter(), Counter()]
    locks = [threading.Lock(), threading.Lock()]

    def worker(index: int) -> Callable[[], None]:
        counter, lock = counters[index], locks[index]

        def run() -> None:
            with lock:
                counter.incr()

        return run

    schedule.run(worker(0), worker(1))
    return tuple(c.n for c in counters)


def list_appends(schedule: Schedule) -> Any:
    seen: list[int] = []
    schedule.run(lambda: seen.append(1), lambda: seen.append(2), lambda: seen.append(3))
    return tuple(seen)


def global_race(schedule: Schedule) -> Any:
    global SHARED_TOTAL
    SHARED_TOTAL = 0

    def add() -> None:
        global SHARED_TOTAL
        SHARED_TOTAL = SHARED_TOTAL + 1

    schedule.run(add, add)
    return SHARED_TOTAL


def cell_race(schedule: Schedule) -> Any:
    total = 0

    def add() -> None:
        nonlocal total
        total += 1

    schedule.run(add, add)
    return total


def subscript_race(schedule: Schedule) -> Any:
    counts = {"k": 0}

    def add() -> None:
        counts["k"] += 1

    schedule.run(add, add)
    return counts["k"]


def observer_sees_decrease(schedule: Schedule) -> Any:
    counter = Counter()

    def observe() -> bool:
        first = counter.n
        second = counter.n
        return second < first

    def twice() -> None:
        counter.incr()
        counter.incr()

    results = schedule.run(counter.incr, twice, observe)
    return results[2], counter.n


def spawn_and_join(schedule: Schedule) -> Any:
    counter = Counter()

    def main() -> None:
        child = threading.Thread(target=counter.incr)
        child.start()
        counter.incr()
        child.join()

    schedule.run(main)
    return counter.n


def four_preemptions(schedule: Schedule) -> Any:
    """"ababab" needs 4 preemptions: the threads alternate, iteration by iteration."""
    state = {"log": ""}

    def writer(mark: str) -> Callable[[], None]:
        def run() -> None:
            for _ in range(3):
                state["log"] = state["log"] + mark

        return run

    schedule.run(writer("a"), writer("b"))
    return state["log"]


def outcome_of(program: Program, schedule: Schedule) -> Any:
    """The program's outcome, a deadlock or an exception included."""
    try:
        return ("returned", program(schedule))
    except DeadlockError:
        return ("deadlock",)
    except Exception as error:  # noqa: BLE001 - an outcome like another
        return ("raised", type(error).__name__)


PROGRAMS: dict[str, Program] = {
    program.__name__: program
    for program in (
        lost_update, lost_update_three, locked_counter, check_then_act, lock_too_narrow, abba,
        dining, dining_ordered, condition_handoff, lost_wakeup, semaphore_guard,
        semaphore_released_twice, queue_order,
        event_gate, independent, independent_objects, list_appends, global_race, cell_race,
        subscript_race, observer_sees_decrease, spawn_and_join,
    )
}  # fmt: skip
