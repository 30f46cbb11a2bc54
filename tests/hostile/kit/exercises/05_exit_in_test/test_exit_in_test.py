"""Graded tests of the fake exercise 05_exit_in_test: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

exit_in_test = load_impl("exit_in_test")


@pytest.mark.points(2)
def test_first():
    assert exit_in_test.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert exit_in_test.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert exit_in_test.quick() == 1
