"""Graded tests of the fake exercise 15_kill_parent: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

kill_parent = load_impl("kill_parent")


@pytest.mark.points(2)
def test_first():
    assert kill_parent.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert kill_parent.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert kill_parent.quick() == 1
