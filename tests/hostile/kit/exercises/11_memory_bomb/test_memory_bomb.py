"""Graded tests of the fake exercise 11_memory_bomb: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

memory_bomb = load_impl("memory_bomb")


@pytest.mark.points(2)
def test_first():
    assert memory_bomb.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert memory_bomb.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert memory_bomb.quick() == 1
