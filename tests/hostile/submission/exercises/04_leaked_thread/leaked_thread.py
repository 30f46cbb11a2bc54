"""risky() leaves a non-daemon thread running and returns 41."""

import threading


def quick():
    return 1


def risky():
    threading.Thread(target=threading.Event().wait, name="leaked", daemon=False).start()
    return 41
