"""Graded tests of the fake exercise 10_escaping_daemon: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

escaping_daemon = load_impl("escaping_daemon")


@pytest.mark.points(2)
def test_first():
    assert escaping_daemon.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert escaping_daemon.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert escaping_daemon.quick() == 1
