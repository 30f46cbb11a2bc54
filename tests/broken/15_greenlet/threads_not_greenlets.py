"""RoundRobin passes the turn between real threads with Events: right order, wrong tool."""

# ruff: noqa  (deliberately broken: the solution with one mistake)

CAUGHT_BY = ['test_everything_runs_in_the_callers_os_thread_on_greenlets']


from collections import deque
from collections.abc import Callable
from typing import Any

from greenlet import greenlet


def ping_pong(n: int) -> list[str]:
    """Two greenlets take turns n times: ["ping 0", "pong 0", "ping 1", "pong 1", ...]."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    said: list[str] = []

    def ping() -> None:
        for i in range(n):
            said.append(f"ping {i}")
            pong_player.switch()

    def pong() -> None:
        for i in range(n):
            said.append(f"pong {i}")
            ping_player.switch()

    ping_player = greenlet(ping)
    pong_player = greenlet(pong)
    ping_player.switch()  # ping ends after its last turn; control comes back here
    if n:
        pong_player.switch()  # pong's loop is over too: let it finish instead of hanging around
    return said


import threading


class RoundRobin:
    """Threads instead of greenlets: a token passed with one Event per task."""

    def __init__(self):
        self._tasks = []
        self._local = threading.local()
        self._loop_turn = threading.Event()

    def spawn(self, fn, *args):
        number = len(self._tasks)
        self._tasks.append([number, fn, args, threading.Event(), None, None])
        return number

    def pause(self):
        task = getattr(self._local, "task", None)
        if task is None:
            raise RuntimeError("pause() outside a task")
        task[3].clear()
        self._loop_turn.set()
        task[3].wait()

    def _body(self, task):
        self._local.task = task
        task[3].wait()
        try:
            task[1](*task[2])
        except BaseException as error:
            task[5] = error
        task[4] = "done"
        self._loop_turn.set()

    def run(self):
        steps, ready, started = [], list(self._tasks), set()
        while ready or len(ready) < len(self._tasks):
            ready = [t for t in self._tasks if t[4] is None]
            if not ready:
                break
            for task in ready:
                if task[4] is not None:
                    continue
                steps.append(task[0])
                if task[0] not in started:
                    started.add(task[0])
                    threading.Thread(target=self._body, args=(task,), daemon=True).start()
                self._loop_turn.clear()
                task[3].set()
                self._loop_turn.wait()
                if task[5] is not None:
                    raise task[5]
        return steps
