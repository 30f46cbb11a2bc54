"""The clock ticks as fast as it can: it never sleeps between ticks."""

import multiprocessing
import os
import time

CAUGHT_BY = ["test_clock_ticks_are_interval_apart"]


class ClockProcess(multiprocessing.Process):
    def __init__(self, interval, count, queue):
        if interval <= 0 or count < 0:
            raise ValueError((interval, count))
        super().__init__()
        self.interval, self.count, self.queue = interval, count, queue

    def run(self):
        for n in range(self.count):
            self.queue.put((n, os.getpid(), time.time()))


def _call(connection, fn, args):
    try:
        connection.send(("value", fn(*args)))
    except BaseException as error:
        connection.send(("error", error))


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
            kind, payload = receiver.recv()
        except EOFError:
            child.join()
            raise RuntimeError(f"the child exited with code {child.exitcode}") from None
    finally:
        child.join()
    if kind == "error":
        raise payload
    return payload
