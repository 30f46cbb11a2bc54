"""The pytest side of :func:`~pytest_concurrency.schedules`: patch scope and sensible settings.

A test given ``schedules()`` gets the controlled primitives from before its
fixtures run until after its teardown, and settings that suit controlled runs
(no deadline; derandomized for exercise tests and in CI; no explain phase,
whose lines would be the scheduler's; one failure at a time, no ExceptionGroup); and
an example that only repeats interleavings already run does not count (``_novelty``).
The strategy itself is ``strategy.py``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from .._config import Setting, add, choice, flag, path_to, read
from .._frames import error_chain, without_plugin_stacks
from ..layout import in_exercise_folder
from . import _report
from ._novelty import count_new_interleavings_only
from ._patching import end_of_test, install_for_test
from .strategy import uses_schedules

CI = Setting(
    "ci", ini=False, env="CI", parse=flag, default=False,
    help="set (to anything) by CI services: schedule tests draw the same schedules on every run",
)

RACE_HTML = Setting(
    "race_html", option="--race-html", metavar="DIR", parse=path_to("anything"), default=None,
    help="write DIR/<test>.html for each failing schedule test: the interleaving as an SVG "
    "timeline, one lane per thread",
)
RACE_STORY = Setting(
    "race_story", option="--race-story", metavar="list|lanes", parse=choice("list", "lanes"),
    default="list", shown_default="list",
    help="how a failing schedule test shows its interleaving: the list of steps, or also as "
    "lanes, one column per thread (within 100 columns)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """--race-html DIR and --race-story."""
    add(parser, RACE_HTML, RACE_STORY)


def _sensible_settings(item: pytest.Item) -> None:
    """Defaults for schedule tests, on top of (never instead of) the test's own @settings."""
    function = getattr(item, "obj", None)
    if function is None or not uses_schedules(function):
        return
    # Only now: importing Hypothesis costs a suite that never uses it a quarter second.
    from hypothesis import HealthCheck, Phase, settings

    current = getattr(function, "_hypothesis_internal_use_settings", None) or settings.default
    if current is None:  # no profile loaded: nothing to add to
        return
    changes: dict[str, Any] = {}
    default_deadline = settings.get_profile("default").deadline
    if current.deadline == default_deadline:
        # Controlled runs start real threads: their time says nothing about the code.
        changes["deadline"] = None
    suppressed = list(current.suppress_health_check)
    for check in (HealthCheck.too_slow, HealthCheck.data_too_large):
        if check not in suppressed:
            suppressed.append(check)
    changes["suppress_health_check"] = suppressed
    if Phase.explain in current.phases:
        # Its "lines always and only run by failing cases" are the scheduler's own
        # lines (the thread that blocks last): it cannot help in a schedule test.
        changes["phases"] = [phase for phase in current.phases if phase is not Phase.explain]
    if current.report_multiple_bugs == settings.get_profile("default").report_multiple_bugs:
        # One story at a time: two distinct failures would come as an ExceptionGroup.
        changes["report_multiple_bugs"] = False
    if not current.derandomize and (read(item.config, CI) or in_exercise_folder(item.path)):
        # A grade must not depend on luck: the same schedules on every run.
        changes["derandomize"] = True
    with contextlib.suppress(AttributeError):  # a test object that refuses attributes
        function._hypothesis_internal_use_settings = settings(current, **changes)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Forget the deadlocks shown: a report points back only at its own session's."""
    _report.shown_deadlocks.clear()  # (pytester runs many sessions in one process)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every schedule test the settings of controlled runs before it is run."""
    for item in items:
        _sensible_settings(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """Patch threading before the fixtures run, so objects they make are controllable."""
    # Before the fixtures run: a Counter (and its Lock) made by a fixture is
    # controllable in the test's schedule.run like one made in the test body.
    function = getattr(item, "obj", None)
    if function is not None and uses_schedules(function):
        install_for_test()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Count only the examples that play an interleaving not seen before (``_novelty``)."""
    function = getattr(item, "obj", None)
    handle = getattr(function, "hypothesis", None)
    if handle is None or not uses_schedules(function):
        return (yield)
    inner_test = handle.inner_test
    handle.inner_test = count_new_interleavings_only(inner_test)
    try:
        return (yield)
    finally:
        handle.inner_test = inner_test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """Take the patches out once the test and its fixtures are done."""
    try:
        return (yield)
    finally:
        end_of_test()


def _page_name(nodeid: str) -> str:
    """``exercises/06_locks/test_bank.py::test_x[1]`` -> ``06_locks.test_bank.test_x-1.html``."""
    path, _, name = nodeid.partition("::")
    parts = [p for p in path.removesuffix(".py").split("/") if p][-2:]
    cleaned = "".join(c if c.isalnum() or c in "_-." else "-" for c in ".".join([*parts, name]))
    return cleaned.strip("-") + ".html"


def _note_deadlocks_shown(error: BaseException | None, test: str) -> None:
    """Remember the deadlocks this failure showed in full, for later tests to point at."""
    for link in error_chain(error):
        for found in (link, getattr(link, "deadlock", None)):
            sites = getattr(found, "deadlock_sites", None)
            if sites is not None:
                _report.shown_deadlocks.setdefault(sites, test)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A failing schedule test's interleaving as a picture: lanes, an HTML page."""
    report: pytest.TestReport = yield
    if report.failed and report.sections:
        # pytest-timeout dumps every thread's stack: the plugin's own threads and
        # frames are not the student's (the plugin's snapshot says what matters).
        report.sections = [
            (title, without_plugin_stacks(text) if title.startswith("Captured") else text)
            for title, text in report.sections
        ]
    if call.when == "setup":
        _report.last_told = None
    if call.when != "call":
        return report
    if report.failed and call.excinfo is not None:
        _note_deadlocks_shown(call.excinfo.value, item.name)
    told, _report.last_told = _report.last_told, None
    function = getattr(item, "obj", None)
    if not report.failed or told is None or function is None or not uses_schedules(function):
        return report
    html_dir, show_lanes = read(item.config, RACE_HTML), read(item.config, RACE_STORY) == "lanes"
    if html_dir is None and not show_lanes:
        return report
    from . import _picture

    timeline = _picture.timeline_of(*told)
    if not timeline.steps:
        return report
    if show_lanes:
        report.sections.append(("the interleaving as lanes", _picture.lanes(timeline)))
    if html_dir is not None:
        message = str(call.excinfo.value) if call.excinfo is not None else ""
        html_dir.mkdir(parents=True, exist_ok=True)
        page = html_dir / _page_name(item.nodeid)
        page.write_text(_picture.html_page(timeline, item.nodeid, message), encoding="utf-8")
        report.sections.append(("the interleaving as a picture", f"written to {page}"))
    return report
