"""risky() deadlocks two worker threads and joins them."""

import threading


def quick():
    return 1


def risky():
    a, b = threading.Lock(), threading.Lock()
    ready = threading.Barrier(2)

    def worker(first, second):
        with first:
            ready.wait()
            with second:
                pass

    threads = [threading.Thread(target=worker, args=(a, b)), threading.Thread(target=worker, args=(b, a))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 42
