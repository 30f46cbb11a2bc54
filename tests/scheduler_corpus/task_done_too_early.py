"""task_done() before the result is recorded: queue.join() returns with a result missing."""

import queue


def _scenario(schedule, record_first: bool) -> None:
    tasks: queue.Queue = queue.Queue()
    results: dict[int, int] = {}

    def worker() -> None:
        while True:
            item = tasks.get()
            if item is None:
                tasks.task_done()
                return
            if record_first:
                results[item] = item * item
                tasks.task_done()
            else:
                tasks.task_done()
                results[item] = item * item

    def producer() -> dict[int, int]:
        tasks.put(1)
        tasks.put(2)
        tasks.join()
        seen = dict(results)
        tasks.put(None)
        return seen

    _, seen = schedule.run(worker, producer)
    assert seen == {1: 1, 2: 4}, f"join() returned before every result was recorded: {seen}"


def buggy(schedule) -> None:
    _scenario(schedule, record_first=False)


def fixed(schedule) -> None:
    _scenario(schedule, record_first=True)
