"""The module sleeps forever while it is imported (a demo left at module level)."""

import time


def quick():
    return 1


def risky():
    return 42


time.sleep(10**6)
