"""Graded tests of the fake exercise 04_leaked_thread: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

leaked_thread = load_impl("leaked_thread")


@pytest.mark.points(2)
def test_first():
    assert leaked_thread.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert leaked_thread.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert leaked_thread.quick() == 1
