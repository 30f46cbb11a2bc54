# Imported here, before any in-process pytester run: such a run takes the modules it imported
# out of sys.modules afterwards, while multiprocessing keeps them as attributes.  A Manager
# imported later would then hold a Pool class that pickle finds in a second copy of
# multiprocessing.pool, and no Manager could be spawned in this process any more.
import multiprocessing.managers  # noqa: F401
import multiprocessing.pool  # noqa: F401

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _inner_runs_look_the_same_in_ci(request, monkeypatch):
    """pytest runs started by pytester print as they would on a developer's machine.

    With CI (or BUILD_NUMBER) set, pytest repeats each failure's whole message,
    untruncated, in the short summary, so a test counting lines of an inner
    run's output would count them twice in CI only.
    """
    if "pytester" in request.fixturenames:
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.delenv("BUILD_NUMBER", raising=False)
