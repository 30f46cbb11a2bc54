"""risky() returns 42 only when the test process is confined: the probe run before any kill(-1).

The test that grades this submission names, in the environment, its own PID
namespace and processes the test process must not see or signal (the test
itself and a witness it started, whose command line holds a marker).
risky() fails, saying what it saw, unless:

- the test process is in another PID namespace;
- it cannot signal (signal 0) any of those processes;
- no process it can see in /proc is the grader or the witness;
- it leads its own process group.
"""

import os


def quick():
    return 1


def problems():
    host_ns = os.environ.get("HOSTILE_HOST_PID_NS")
    witnesses = [int(p) for p in os.environ.get("HOSTILE_WITNESS_PIDS", "").split(",") if p]
    marker = os.environ.get("HOSTILE_WITNESS_MARKER")
    if not (host_ns and witnesses and marker):
        return ["the test did not say what to look for"]
    found = []
    if os.readlink("/proc/self/ns/pid") == host_ns:
        found.append(f"same PID namespace as the test: {host_ns}")
    for pid in witnesses:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except OSError as error:
            found.append(f"pid {pid} exists: {error}")
            continue
        found.append(f"can signal pid {pid}")
    visible = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    for pid in visible:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                cmdline = stream.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmdline or "pytest_concurrency grade" in cmdline:
            found.append(f"sees pid {pid}: {cmdline[:120]}")
    if os.getpgid(0) != os.getpid():
        found.append("does not lead its own process group")
    if found:
        found.append(f"visible pids: {visible}")
    return found


def risky():
    found = problems()
    if found:
        raise AssertionError("not confined: " + "; ".join(found))
    return 42
