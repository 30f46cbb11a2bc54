"""risky() kills its whole process group (os.killpg(0, SIGKILL)).

It refuses unless the test process leads its own process group, so that it
can never reach the grader or the tests that run the grader.
"""

import os
import signal
import time


def quick():
    return 1


def risky():
    if os.getpgid(0) != os.getpid():
        raise RuntimeError("refusing to kill a process group that is not the test process's own")
    os.killpg(0, signal.SIGKILL)
    time.sleep(30)
    return 42
