"""Graded tests of the fake exercise 03_kill_everything: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

kill_everything = load_impl("kill_everything")


@pytest.mark.points(2)
def test_first():
    assert kill_everything.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert kill_everything.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert kill_everything.quick() == 1
