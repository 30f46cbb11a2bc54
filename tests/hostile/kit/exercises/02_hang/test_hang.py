"""Graded tests of the fake exercise 02_hang: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

hang = load_impl("hang")


@pytest.mark.points(2)
def test_first():
    assert hang.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert hang.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert hang.quick() == 1
