"""risky() kills every process it can signal: os.kill(-1, SIGKILL).

Outside a PID namespace of its own, as root, that is every process on the
machine: it refuses unless the test process is in another PID namespace than
the test that runs the grader (named in the environment) and cannot signal
the processes that test named.  The test grades it only after the probe
(02_probe) said the test processes are confined.
"""

import os
import signal
import time


def quick():
    return 1


def _refuse_unless_confined():
    host_ns = os.environ.get("HOSTILE_HOST_PID_NS")
    witnesses = [int(p) for p in os.environ.get("HOSTILE_WITNESS_PIDS", "").split(",") if p]
    if not host_ns or not witnesses or os.readlink("/proc/self/ns/pid") == host_ns:
        raise RuntimeError("refusing: not in a PID namespace of its own")
    for pid in witnesses:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except OSError:
            pass
        raise RuntimeError(f"refusing: process {pid} of the test is in reach")


def risky():
    _refuse_unless_confined()
    os.kill(-1, signal.SIGKILL)
    time.sleep(30)
    return 42
