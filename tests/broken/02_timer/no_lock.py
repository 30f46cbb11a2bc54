"""No lock: two racing callers both cancel the same old timer and each start a new one; both fire."""

import threading

CAUGHT_BY = ["test_racing_callers_give_exactly_one_call_with_someones_last_arguments"]


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
        self._timer = None
        self._pending = None

    def __call__(self, *args, **kwargs):
        if self._timer is not None:
            self._timer.cancel()
        self._pending = (args, kwargs)
        self._timer = threading.Timer(self.wait, self._fire)
        self._timer.start()

    def flush(self):
        self._stop_timer()
        if self._pending is not None:
            (args, kwargs), self._pending = self._pending, None
            self.fn(*args, **kwargs)

    def cancel(self):
        self._stop_timer()
        self._pending = None

    def _stop_timer(self):
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()

    def _fire(self):
        args, kwargs = self._pending
        self.fn(*args, **kwargs)
