"""Graded tests of the fake exercise 03_deadlock: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

deadlock = load_impl("deadlock")


@pytest.mark.points(2)
def test_first():
    assert deadlock.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert deadlock.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert deadlock.quick() == 1
