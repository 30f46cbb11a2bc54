"""risky() builds a Pool whose __init__ loops forever; every test that builds one hangs."""


class Pool:
    def __init__(self):
        while True:
            pass

    def run(self):
        return 42


def quick():
    return 1


def risky():
    return Pool().run()
