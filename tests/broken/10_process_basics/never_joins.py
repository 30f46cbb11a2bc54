"""run_in_process reads the answer but never joins the child: every call leaves a zombie."""

import multiprocessing
import os
import time

CAUGHT_BY = [
    "test_run_in_process_returns_what_the_child_computed",
    "test_an_exception_in_the_child_is_raised_in_the_parent",
]


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
        connection.send(("value", fn(*args)))
    except BaseException as error:
        connection.send(("error", error))


def run_in_process(fn, *args, timeout=None):
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_call, args=(sender, fn, args))
    child.start()
    sender.close()
    if not receiver.poll(timeout):
        child.kill()
        child.join()
        raise TimeoutError(f"no answer within {timeout} s")
    try:
        kind, payload = receiver.recv()
    except EOFError:
        raise RuntimeError(f"the child exited with code {child.exitcode}") from None
    if kind == "error":
        raise payload
    return payload
