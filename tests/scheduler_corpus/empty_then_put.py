"""A race between two thread-safe calls: `if q.empty(): q.put_nowait(x)` on a one-slot queue."""

import contextlib
import queue


def offer_checked(slot: queue.Queue, item: int) -> None:
    if slot.empty():
        slot.put_nowait(item)  # raises queue.Full if another thread got in between


def offer_atomic(slot: queue.Queue, item: int) -> None:
    with contextlib.suppress(queue.Full):
        slot.put_nowait(item)


def _scenario(schedule, offer) -> None:
    slot: queue.Queue = queue.Queue(maxsize=1)
    schedule.run(lambda: offer(slot, 1), lambda: offer(slot, 2))
    assert slot.qsize() == 1


def buggy(schedule) -> None:
    _scenario(schedule, offer_checked)


def fixed(schedule) -> None:
    _scenario(schedule, offer_atomic)
