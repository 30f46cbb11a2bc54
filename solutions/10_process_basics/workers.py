"""Processes, two ways: a ``Process`` subclass and a function run in a child."""

from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import Connection, wait


class ClockProcess(multiprocessing.Process):
    """A clock in its own process: ``count`` ticks, ``interval`` seconds apart.

    Each tick puts ``(n, pid, timestamp)`` on ``queue``.

    >>> q = multiprocessing.Queue()
    >>> clock = ClockProcess(0.1, 2, q)
    >>> clock.start(); ticks = [q.get(), q.get()]; clock.join()
    >>> [n for n, pid, when in ticks]
    [0, 1]
    """

    def __init__(self, interval: float, count: int, queue) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        super().__init__()
        # Everything set here is pickled to the child under the spawn start method.
        self.interval = interval
        self.count = count
        self.queue = queue

    def run(self) -> None:
        for n in range(self.count):
            if n:
                time.sleep(self.interval)
            self.queue.put((n, os.getpid(), time.time()))


def _call_and_send(connection: Connection, fn, args: tuple) -> None:
    """The child's side of :func:`run_in_process` (module level, so that it pickles)."""
    try:
        result = ("value", fn(*args))
    except BaseException as error:
        result = ("error", error)
    connection.send(result)
    connection.close()


def run_in_process(fn, *args, timeout: float | None = None):
    """``fn(*args)`` computed in a child process.

    Re-raises the child's exception; kills the child and raises ``TimeoutError``
    after ``timeout`` seconds; raises ``RuntimeError`` if the child died without
    an answer.  The child is always joined: no zombie is left.

    >>> run_in_process(pow, 2, 10)
    1024
    """
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_call_and_send, args=(sender, fn, args))
    child.start()
    sender.close()  # our copy: without it, a dead child would not end our recv()
    try:
        # Wake up for an answer or for the child's death, whichever comes first.
        if not wait([receiver, child.sentinel], timeout):
            child.kill()
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} took longer than {timeout} s")
        try:
            kind, payload = receiver.recv()  # before join: a large answer fills the pipe
        except EOFError:
            child.join()
            raise RuntimeError(
                f"the child process exited with code {child.exitcode} without an answer"
            ) from None
    finally:
        child.join()
        receiver.close()
    if kind == "error":
        raise payload
    return payload
