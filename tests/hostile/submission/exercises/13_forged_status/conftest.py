"""Hostile: forge every test as passed and the session's exit status as 0."""

from pathlib import Path

import pytest

Path(__file__).resolve().parents[3].joinpath("MARKER-conftest-exercise").write_text("ran")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    report.outcome = "passed"
    report.longrepr = None
    return report


def pytest_sessionfinish(session):
    session.exitstatus = 0
