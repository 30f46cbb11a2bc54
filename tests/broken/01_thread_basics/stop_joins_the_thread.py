"""stop() also joins the clock thread: called from inside tick, the thread tries to join itself."""

import threading

CAUGHT_BY = ["test_stop_called_from_tick_is_the_last_tick"]


def _loop(interval, tick, stopped):
    n = 0
    while not stopped.is_set():
        tick(n)
        n += 1
        if stopped.wait(interval):
            return


class ClockThread(threading.Thread):
    def __init__(self, interval, tick, name=None):
        if interval <= 0:
            raise ValueError(interval)
        super().__init__(name=name, daemon=True)
        self.interval, self.tick = interval, tick
        self._stopping = threading.Event()

    def run(self):
        _loop(self.interval, self.tick, self._stopping)

    def stop(self):
        self._stopping.set()
        if self.is_alive():
            self.join()


def start_clock(interval, tick, daemon=True, stop=None):
    if interval <= 0:
        raise ValueError(interval)
    thread = threading.Thread(target=_loop, args=(interval, tick, stop or threading.Event()), daemon=daemon)
    thread.start()
    return thread
