"""The clock is a thread pretending to be a process: its ticks come from the parent's pid."""

import multiprocessing
import os
import threading
import time

CAUGHT_BY = ["test_clock_process_is_a_multiprocessing_process", "test_clock_ticks_in_order_from_its_own_process"]


class ClockProcess(threading.Thread):
    def __init__(self, interval, count, queue):
        if interval <= 0 or count < 0:
            raise ValueError((interval, count))
        super().__init__(daemon=True)
        self.interval, self.count, self.queue = interval, count, queue

    @property
    def pid(self):
        return os.getpid()

    @property
    def exitcode(self):
        return None if self.is_alive() else 0

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
