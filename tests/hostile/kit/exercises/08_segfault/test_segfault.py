"""Graded tests of the fake exercise 08_segfault: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

segfault = load_impl("segfault")


@pytest.mark.points(2)
def test_first():
    assert segfault.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert segfault.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert segfault.quick() == 1
