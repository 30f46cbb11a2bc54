"""Graded tests of the fake exercise 14_fake_results: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

fake_results = load_impl("fake_results")


@pytest.mark.points(2)
def test_first():
    assert fake_results.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert fake_results.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert fake_results.quick() == 1
