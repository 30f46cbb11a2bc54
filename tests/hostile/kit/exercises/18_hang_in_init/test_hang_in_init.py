"""Graded tests of the fake exercise 18_hang_in_init: four tests meet the hostile code, between two safe ones."""

import pytest

from pytest_concurrency import load_impl

hang_in_init = load_impl("hang_in_init")


@pytest.mark.points(2)
def test_first():
    assert hang_in_init.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert hang_in_init.risky() == 42


@pytest.mark.points(3)
def test_risky_2():
    assert hang_in_init.risky() == 42


@pytest.mark.points(3)
def test_risky_3():
    assert hang_in_init.risky() == 42


@pytest.mark.points(3)
def test_risky_4():
    assert hang_in_init.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert hang_in_init.quick() == 1
