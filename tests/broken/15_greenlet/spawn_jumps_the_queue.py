"""A task spawned while running goes to the front of the rotation, not the end."""

# ruff: noqa  (deliberately broken: the solution with one mistake)

CAUGHT_BY = ['test_a_task_spawned_while_running_joins_the_end_of_the_rotation']


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


class RoundRobin:
    """A tiny scheduler: tasks are greenlets, ``pause()`` passes the turn to the next one."""

    def __init__(self) -> None:
        self._ready: deque[tuple[int, greenlet]] = deque()
        self._count = 0
        self._current: greenlet | None = None
        self._loop: greenlet | None = None

    def spawn(self, fn: Callable[..., Any], *args: Any) -> int:
        """Add a task; returns its number (0, 1, ... in spawn order)."""
        number = self._count
        self._count += 1
        self._ready.appendleft((number, greenlet(lambda: fn(*args))))  # jumps the queue
        return number

    def pause(self) -> None:
        """Called inside a task: let every other ready task run once, then go on."""
        if self._loop is None or greenlet.getcurrent() is not self._current:
            raise RuntimeError("pause() is called from inside a task that RoundRobin.run() is running")
        self._loop.switch()

    def run(self) -> list[int]:
        """Run every task to its end; returns the task number of each step, in order."""
        self._loop = greenlet.getcurrent()
        steps: list[int] = []
        try:
            while self._ready:
                number, task = self._ready.popleft()
                task.parent = self._loop  # when it ends (or raises), come back here
                steps.append(number)
                self._current = task
                task.switch()
                if not task.dead:
                    self._ready.append((number, task))
        finally:
            self._current = self._loop = None
        return steps
