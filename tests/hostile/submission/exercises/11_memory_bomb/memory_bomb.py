"""risky() allocates memory until it has 3 GiB (bounded)."""

import time


def quick():
    return 1


def risky():
    hoard = []
    for _ in range(3 * 1024 // 32):
        hoard.append(bytearray(32 * 2**20))
        time.sleep(0.01)
    return 42
