"""risky() dereferences NULL with ctypes."""



def quick():
    return 1


def risky():
    import ctypes

    return ctypes.string_at(0)
