"""A lost arrival at a rendezvous: the count is checked, then the wait misses the last notify."""

import threading


class Rendezvous:
    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.cond = threading.Condition()

    def arrive_check_then_wait(self) -> None:
        with self.cond:
            self.arrived += 1
            last = self.arrived == self.parties
        if last:
            with self.cond:
                self.cond.notify_all()
            return
        with self.cond:
            self.cond.wait()  # the last one may have notified already

    def arrive(self) -> None:
        with self.cond:
            self.arrived += 1
            if self.arrived == self.parties:
                self.cond.notify_all()
            while self.arrived < self.parties:
                self.cond.wait()


def buggy(schedule) -> None:
    meeting = Rendezvous(3)
    schedule.run(*[meeting.arrive_check_then_wait] * 3)


def fixed(schedule) -> None:
    meeting = Rendezvous(3)
    schedule.run(*[meeting.arrive] * 3)
