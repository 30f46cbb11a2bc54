"""Order violation: a thread uses a resource before the other one set it up."""

import threading


class Service:
    def __init__(self):
        self.connection = None
        self.ready = threading.Event()

    def start(self):
        self.connection = {"open": True}
        self.ready.set()

    def use(self):
        return self.connection["open"]

    def safe_use(self):
        self.ready.wait()
        return self.connection["open"]


def buggy(schedule):
    service = Service()
    schedule.run(service.start, service.use)


def fixed(schedule):
    service = Service()
    schedule.run(service.start, service.safe_use)
