"""run_in_process joins the child before reading its answer: a large answer deadlocks."""

import multiprocessing
import os
import queue
import time

CAUGHT_BY = ["test_a_large_result_comes_back_whole"]


class ClockProcess(multiprocessing.Process):
    def __init__(self, interval, count, queue):
        if interval <= 0 or count < 0:
            raise ValueError((interval, count))
        super().__init__()
        self.interval, self.count, self.queue = interval, count, queue

    def run(self):
        for n in range(self.count):
            if n:
                time.sleep(self.interval)
            self.queue.put((n, os.getpid(), time.time()))


def _call(results, fn, args):
    try:
        results.put(("value", fn(*args)))
    except BaseException as error:
        results.put(("error", error))


def run_in_process(fn, *args, timeout=None):
    results = multiprocessing.Queue()
    child = multiprocessing.Process(target=_call, args=(results, fn, args))
    child.start()
    child.join(timeout)  # the child cannot end before its queued answer was read
    if child.is_alive():
        child.kill()
        child.join()
        raise TimeoutError(f"no answer within {timeout} s")
    try:
        kind, payload = results.get(timeout=1)
    except queue.Empty:
        raise RuntimeError(f"the child exited with code {child.exitcode} without an answer") from None
    if kind == "error":
        raise payload
    return payload
