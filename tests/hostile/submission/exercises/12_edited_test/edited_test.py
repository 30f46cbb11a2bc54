"""risky() is wrong; the submission's copy of the test file is edited to pass."""



def quick():
    return 1


def risky():
    return 0
