"""risky() forks a few hundred sleeping processes (bounded, so that a supervisor bug cannot take the machine down)."""

import os
import time


def quick():
    return 1


def risky():
    for _ in range(300):
        if os.fork() == 0:
            time.sleep(20)
            os._exit(0)
    time.sleep(20)
    return 42
