"""Graded tests of the fake exercise 01_sound: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

sound = load_impl("sound")


@pytest.mark.points(2)
def test_first():
    assert sound.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert sound.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert sound.quick() == 1
