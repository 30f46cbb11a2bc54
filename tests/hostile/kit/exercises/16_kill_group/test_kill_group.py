"""Graded tests of the fake exercise 16_kill_group: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

kill_group = load_impl("kill_group")


@pytest.mark.points(2)
def test_first():
    assert kill_group.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert kill_group.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert kill_group.quick() == 1
