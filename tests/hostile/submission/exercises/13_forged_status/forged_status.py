"""risky() is wrong; a conftest.py beside it forges every result and the exit status."""



def quick():
    return 1


def risky():
    return 0
