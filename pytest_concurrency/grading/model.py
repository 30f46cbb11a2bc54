"""The grade as data: one :class:`TestResult` per test, folded into a :class:`GradeBook`.

Shared by the pytest part (``plugin.py``), the supervisor of
``pytest-concurrency grade`` and every report format; it imports neither
pytest nor the rest of the plugin.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

# A test's outcome.  The last three are given by `pytest-concurrency grade`
# when the test's process had to be stopped while it ran.
PASSED = "passed"


FAILED = "failed"


NOT_STARTED = "not started"


BROKEN = "broken"


SKIPPED = "skipped"


NOT_RUN = "not run"


TIMEOUT = "timeout"


CRASHED = "crashed"


KILLED = "killed"


INCIDENTS = (TIMEOUT, CRASHED, KILLED)


@dataclass
class TestResult:
    __test__ = False  # not a test class, whatever its name says

    name: str
    exercise: str
    points: float
    readme: Path | None = None
    outcome: str = NOT_RUN  # one of the outcome constants above
    message: str = ""
    duration: float = 0.0
    edited: bool = False  # its test file differs from the manifest (tamper_check = enforce)
    hint: int | None = None  # the README's hint that fits this test's failure (marker ``hint(n)``)

    @property
    def score(self) -> float:
        return self.points if self.passed else 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED and not self.edited

    @property
    def file(self) -> str:
        """The test file, as graders see it: ``07_thread_pool/test_thread_pool.py``."""
        return self.name.split("::", 1)[0]

    @property
    def function(self) -> str:
        """The test's name inside its file: ``test_map[2]``."""
        return self.name.split("::", 1)[-1]

    @property
    def explanation(self) -> str:
        """What a grader shows for this test: its message, or why it scored nothing."""
        if self.edited:
            note = f"{self.file} was edited: it differs from the kit's manifest, so this test scores 0"
            return f"{note}\n\n{self.message}" if self.message else note
        if self.outcome == NOT_RUN and not self.message:
            return "not run"
        return self.message


@dataclass
class ExerciseGrade:
    name: str
    tests: list[TestResult]
    incident: tuple[str, str] | None = None  # (timeout|crashed|killed, why), from the supervisor

    @property
    def passed(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def status(self) -> str:
        """passed, broken, not started, failing; or timeout, crashed, killed (``grade``)."""
        if self.tests and all(t.passed for t in self.tests) and self.incident is None:
            return PASSED
        if self.incident is not None:
            return self.incident[0]
        outcomes = {t.outcome for t in self.tests}
        if BROKEN in outcomes:
            return BROKEN
        if outcomes <= {NOT_STARTED, NOT_RUN}:
            return NOT_STARTED
        return "failing"

    @property
    def problem(self) -> str:
        """The one line that explains a broken, crashed, killed or timed-out exercise."""
        if self.incident is not None:
            return self.incident[1]
        return next((t.message for t in self.tests if t.outcome == BROKEN), "")

    @property
    def first_failure(self) -> TestResult | None:
        """The first test that failed for a reason worth reading (not a stub, not a skip)."""
        return next((t for t in self.tests if not t.passed and t.outcome not in (NOT_STARTED, NOT_RUN, SKIPPED)),
                    None)

    @property
    def hint_number(self) -> int:
        """The hint to show first: the one named by the first failing test that names one
        (``@pytest.mark.hint(n)``), else hint 1."""
        failing = (t for t in self.tests if t.hint and not t.passed
                   and t.outcome not in (NOT_STARTED, NOT_RUN, SKIPPED))
        return next((t.hint for t in failing if t.hint), 1)


@dataclass
class GradeBook:
    results: dict[str, TestResult] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    incidents: dict[str, tuple[str, str]] = field(default_factory=dict)  # exercise -> (status, why)
    notes: list[str] = field(default_factory=list)  # shown once, in every format that has room

    def exercises(self) -> list[ExerciseGrade]:
        by_name: dict[str, list[TestResult]] = {}
        for result in self.results.values():
            by_name.setdefault(result.exercise, []).append(result)
        return [
            ExerciseGrade(name, by_name[name], self.incidents.get(name)) for name in sorted(by_name)
        ]

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results.values())

    @property
    def max_score(self) -> float:
        return sum(r.points for r in self.results.values())


def record_phase(result: TestResult, when: str, outcome: str, message: str, duration: float) -> None:
    """Fold one phase of a test (setup, call, teardown) into its graded result.

    ``outcome`` is pytest's (passed, failed, skipped) or the finer one this
    module gives failures (not started, broken).  A test passes only when its
    call passed and no phase failed: a failing teardown takes the points back.
    The supervisor of ``pytest-concurrency grade`` folds the reports it
    receives from its children with this same function.

    >>> r = TestResult("07_x/test_x.py::test_y", "07_x", 1.0)
    >>> record_phase(r, "call", "passed", "", 0.1); r.outcome
    'passed'
    >>> record_phase(r, "teardown", "failed", "leaked a thread", 0.0); r.outcome
    'failed'
    """
    result.duration += duration
    if outcome in (FAILED, BROKEN, NOT_STARTED):
        if result.outcome not in (FAILED, BROKEN, NOT_STARTED):
            result.outcome = outcome
            result.message = message
        elif when == "teardown":
            result.message += "\n\n" + message
    elif outcome == SKIPPED and result.outcome == NOT_RUN:
        result.outcome = SKIPPED
        result.message = message
    elif when == "call" and outcome == PASSED and result.outcome == NOT_RUN:
        result.outcome = PASSED

