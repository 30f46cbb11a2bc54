"""Graded tests of the fake exercise 12_edited_test: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

edited_test = load_impl("edited_test")


@pytest.mark.points(2)
def test_first():
    assert edited_test.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert edited_test.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert edited_test.quick() == 1
