"""Graded tests of the fake exercise 13_forged_status: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

forged_status = load_impl("forged_status")


@pytest.mark.points(2)
def test_first():
    assert forged_status.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert forged_status.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert forged_status.quick() == 1
