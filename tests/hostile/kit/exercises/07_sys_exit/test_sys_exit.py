"""Graded tests of the fake exercise 07_sys_exit: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

sys_exit = load_impl("sys_exit")


@pytest.mark.points(2)
def test_first():
    assert sys_exit.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert sys_exit.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert sys_exit.quick() == 1
