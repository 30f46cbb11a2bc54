"""Unsafe publication: the object is shared before its fields are set."""

import threading


class Config:
    def __init__(self):
        self.host = None
        self.port = None


class Holder:
    def __init__(self):
        self.current = None
        self.lock = threading.Lock()

    def publish(self):
        config = Config()
        self.current = config
        config.host = "localhost"
        config.port = 11211

    def safe_publish(self):
        config = Config()
        config.host = "localhost"
        config.port = 11211
        self.current = config

    def read(self):
        config = self.current
        if config is not None:
            assert config.port is not None, "saw a published Config with no port yet"


def buggy(schedule):
    holder = Holder()
    schedule.run(holder.publish, holder.read)


def fixed(schedule):
    holder = Holder()
    schedule.run(holder.safe_publish, holder.read)
