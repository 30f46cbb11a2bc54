"""Graded tests of the fake exercise 09_fork_bomb: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

fork_bomb = load_impl("fork_bomb")


@pytest.mark.points(2)
def test_first():
    assert fork_bomb.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert fork_bomb.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert fork_bomb.quick() == 1
