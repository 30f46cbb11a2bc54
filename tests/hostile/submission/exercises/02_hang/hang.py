"""risky() hangs in the main thread, in native code that no deadlock detector can see into."""



def quick():
    return 1


def risky():
    import select

    select.select([], [], [], 3600)
