"""An exception in the child is lost: run_in_process returns None instead of raising it."""

import multiprocessing
import os
import time

CAUGHT_BY = ["test_an_exception_in_the_child_is_raised_in_the_parent"]


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


def _call(connection, fn, args):
    try:
        connection.send(fn(*args))
    except Exception:
        connection.send(None)


def run_in_process(fn, *args, timeout=None):
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_call, args=(sender, fn, args))
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            child.kill()
            raise TimeoutError(f"no answer within {timeout} s")
        try:
            return receiver.recv()
        except EOFError:
            raise RuntimeError(f"the child exited with code {child.exitcode}") from None
    finally:
        child.join()
