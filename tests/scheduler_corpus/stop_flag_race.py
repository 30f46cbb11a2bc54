"""A worker that checks its stop flag, then blocks: the stop request slips in between."""

import threading


class Worker:
    def __init__(self):
        self.stopping = False
        self.wakeup = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stopping:
            self.wakeup.wait()
            self.wakeup.clear()

    def stop(self):
        self.wakeup.set()
        self.stopping = True

    def safe_stop(self):
        self.stopping = True
        self.wakeup.set()


def buggy(schedule):
    worker = Worker()
    schedule.run(worker.run, worker.stop)


def fixed(schedule):
    worker = Worker()
    schedule.run(worker.run, worker.safe_stop)
