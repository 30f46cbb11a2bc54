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
