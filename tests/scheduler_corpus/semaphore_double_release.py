"""A semaphore released twice on an error path: two threads get into a one-slot section."""

import threading


class Failed(Exception):
    pass


class Guarded:
    def __init__(self, release_on_error: bool) -> None:
        self.slots = threading.Semaphore(1)
        self.inside = 0
        self.most = 0
        self.count_lock = threading.Lock()
        self.release_on_error = release_on_error

    def _enter(self) -> None:
        with self.count_lock:
            self.inside += 1
            self.most = max(self.most, self.inside)

    def _leave(self) -> None:
        with self.count_lock:
            self.inside -= 1

    def use(self, fail: bool) -> bool:
        self.slots.acquire()
        try:
            self._enter()
            try:
                if fail:
                    raise Failed
            finally:
                self._leave()
            return True
        except Failed:
            if self.release_on_error:
                self.slots.release()  # released here, and again by the finally below
            return False
        finally:
            self.slots.release()


def _scenario(schedule, release_on_error: bool) -> None:
    guarded = Guarded(release_on_error)
    schedule.run(lambda: guarded.use(True), lambda: guarded.use(False), lambda: guarded.use(False))
    assert guarded.most == 1, f"{guarded.most} threads were inside a section for one"


def buggy(schedule) -> None:
    _scenario(schedule, release_on_error=True)


def fixed(schedule) -> None:
    _scenario(schedule, release_on_error=False)
