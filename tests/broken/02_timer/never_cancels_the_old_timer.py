"""Starts a new timer on every call and forgets the old ones: they outlive flush() and cancel()."""

import threading

CAUGHT_BY = ['test_no_timer_thread_outlives_cancel_or_flush']


def call_later(delay, fn, /, *args, **kwargs):
    if delay < 0:
        raise ValueError(delay)
    timer = threading.Timer(delay, fn, args, kwargs)
    timer.start()
    return timer


class Debouncer:
    def __init__(self, wait, fn):
        if wait < 0:
            raise ValueError(wait)
        self.wait, self.fn = wait, fn
        self._lock = threading.Lock()
        self._pending = None
        self._generation = 0
        self._timers = []

    def __call__(self, *args, **kwargs):
        with self._lock:
            self._generation += 1
            self._pending = (args, kwargs)
            timer = threading.Timer(self.wait, self._fire, (self._generation,))
            self._timers = [timer]
            timer.start()

    def flush(self):
        pending = self._drop()
        if pending:
            self.fn(*pending[0], **pending[1])

    def cancel(self):
        self._drop()

    def _drop(self):
        with self._lock:
            self._generation += 1
            pending, self._pending = self._pending, None
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()
        return pending

    def _fire(self, generation):
        with self._lock:
            if generation != self._generation or self._pending is None:
                return
            (args, kwargs), self._pending = self._pending, None
        self.fn(*args, **kwargs)
