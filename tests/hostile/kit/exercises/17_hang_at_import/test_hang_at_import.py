"""Graded tests of the fake exercise 17_hang_at_import: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

hang_at_import = load_impl("hang_at_import")


@pytest.mark.points(2)
def test_first():
    assert hang_at_import.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert hang_at_import.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert hang_at_import.quick() == 1
