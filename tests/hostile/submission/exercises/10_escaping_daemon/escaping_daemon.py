"""risky() double-forks a daemon into its own session, then returns 41."""

import os
import time


def quick():
    return 1


def risky():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    os.wait()
    return 41
