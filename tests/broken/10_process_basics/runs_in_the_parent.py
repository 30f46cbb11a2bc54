"""run_in_process calls fn in the parent process: no child process at all."""

import multiprocessing
import os
import time

CAUGHT_BY = ["test_run_in_process_returns_what_the_child_computed"]


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


def run_in_process(fn, *args, timeout=None):
    return fn(*args)
