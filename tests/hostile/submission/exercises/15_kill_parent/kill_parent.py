"""The module kills its parent process while it is imported, then waits for what comes.

Without a launcher between them, the parent was the grader itself.
"""

import os
import signal
import time


def quick():
    return 1


def risky():
    return 42


os.kill(os.getppid(), signal.SIGKILL)
time.sleep(30)  # the test process dies with its parent; in the meantime, no test may pass
