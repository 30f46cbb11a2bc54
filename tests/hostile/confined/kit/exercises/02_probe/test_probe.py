"""Graded tests of the fake exercise 02_probe: one safe test, one that meets the hostile code, one safe."""

import pytest

from pytest_concurrency import load_impl

probe = load_impl("probe")


@pytest.mark.points(2)
def test_first():
    assert probe.quick() == 1


@pytest.mark.points(3)
def test_risky():
    assert probe.risky() == 42


@pytest.mark.points(5)
def test_last():
    assert probe.quick() == 1
