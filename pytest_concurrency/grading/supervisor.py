"""``pytest-concurrency grade``: each exercise in its own supervised child process.

The supervisor grades a submission with the kit's own tests, configuration and
plugin; only the exercise modules come from the submission::

    from pytest_concurrency.grading.supervisor import Kit, Limits, Supervisor

    book = Supervisor(Kit.find(), Path("submission"), Limits(wall=120)).run()
    print(book.score, "/", book.max_score)

How it stays honest:

- The list of tests and their points come from a *trusted* collection of the
  kit against its own stubs, before any student code runs.  A test that the
  supervisor never saw pass scores 0; a test it never heard of is ignored.
- Each exercise runs in ``python -I -B -m pytest`` with ``-c`` pointing at the
  kit's ``pytest.ini``, ``--rootdir`` at the kit, a fresh temporary working
  directory and ``--impl SUBMISSION``: a ``conftest.py``, ``pytest.ini``,
  ``setup.cfg``, ``sitecustomize.py`` or ``.pth`` file in the submission is
  never read, because nothing of the submission is on a path Python or pytest
  searches at start-up.
- Results travel over a pipe that the supervisor opened for that child only,
  each line signed with a per-run secret token (``child.py``, loaded in the
  child with ``-p``, removes both from the environment before any student code
  is imported).  Exit statuses, stdout and files the child writes prove nothing.
- Every child has limits on CPU time, address space, open files, file size and
  (when not root) processes, and the supervisor watches its whole process tree
  (a *child subreaper*, so daemonized grandchildren stay in the tree): too many
  processes, too much memory, a test past its time or an exercise past its wall
  time kill the tree.  The test that was running scores 0 with a status saying
  why (timeout, crashed, killed); the exercise is restarted for the tests that
  had not run yet (at most ``Limits.restarts`` times), so one hung test does not
  cost the others.
- A hang costs seconds: collecting an exercise's tests (importing the
  submission) has ``Limits.collect`` seconds; once a test of an exercise timed
  out, the rest of it runs with pytest's ``exercise_timeout`` set to
  ``Limits.short_test``, within what is left of ``Limits.budget`` seconds
  counted from the exercise's first test (pytest's ``exercise_budget`` in the
  child); once that is spent, the tests left are not run.
- The child cannot reach the supervisor: pytest runs under a launcher
  (``launcher.py``), in its own session, with a relay as its parent and, where
  the kernel allows it (root on Linux), in a PID namespace of its own with its
  own ``/proc``.  Killing its parent, its process group or every process it
  can signal costs that exercise only.

What it does not protect against: student code runs in the child's
interpreter, so code written to find the pipe and the token in memory and
rewrite the test runner can forge results.  Run untrusted submissions in a
container too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._config import Setting, lookup_env, path_to
from ..layout import EXERCISE_FOLDER, exercise_folder
from . import launcher
from .child import CHANNEL_ENV, DESELECT_ENV
from .launcher import load_libc
from .manifest import build_manifest, file_digest, is_graded_file, load_manifest
from .model import CRASHED, KILLED, NOT_RUN, TIMEOUT, GradeBook, TestResult, record_phase

# Less than this left of an exercise's budget: its tests left are not run (as in pytest's plugin).
MIN_SHARE = 0.5

# Config that pytest or Python would read if it were on their path; in a
# submission it has no effect, and the report says so when it differs from the kit's.
CONFIG_FILES = frozenset({
    "conftest.py", "pytest.ini", "setup.cfg", "tox.ini", "pyproject.toml", ".pytest.ini",
    "sitecustomize.py", "usercustomize.py",
})
_SKIPPED_DIRS = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "__pycache__",
                           "site-packages", ".tox", ".mypy_cache", ".pytest_cache", ".hypothesis"})

PR_SET_CHILD_SUBREAPER = 36
# How pytest-timeout (the child's exercise_timeout) words a test it stopped.
PYTEST_TIMEOUT = "Timeout (>"
# The launcher's own processes above the graded one (launcher, helper, init, relay).
LAUNCHER_PROCESSES = 4


class GradingError(Exception):
    """Grading itself could not run (no kit, the kit's own tests do not collect)."""


# --- the kit -----------------------------------------------------------------


KIT = Setting(
    "kit", ini=False, env="PYTEST_CONCURRENCY_KIT", parse=path_to("anything"), default=None,
    help="the kit whose tests `pytest-concurrency grade` runs, when --kit is not given",
)

@dataclass(frozen=True)
class Kit:
    """The installed kit: the folder that holds ``exercises/`` and ``pytest.ini``."""

    root: Path

    @property
    def exercises(self) -> Path:
        return self.root / "exercises"

    @property
    def config(self) -> Path:
        return self.root / "pytest.ini"

    @classmethod
    def find(cls, explicit: str | os.PathLike[str] | None = None) -> Kit:
        """``--kit DIR``, else ``$PYTEST_CONCURRENCY_KIT``, else the kit around the package.

        An editable install (``pip install -e .``) leaves the package inside the
        kit, so its parent folder is the kit.
        """
        from_env = lookup_env(KIT)
        if explicit is not None:
            source, root = "--kit", Path(explicit)
        elif from_env.value is not None:
            source, root = from_env.origin.name, from_env.value
        else:
            source, root = "the installed package", Path(__file__).resolve().parents[2]
        root = root.expanduser().resolve()
        kit = cls(root)
        if not kit.exercises.is_dir() or not kit.config.is_file():
            raise GradingError(
                f"cannot find the kit's tests: {root} (from {source}) has no exercises/ folder "
                "and pytest.ini; pass --kit DIR, the folder of the kit that holds both"
            )
        return kit

    @property
    def is_packaged(self) -> bool:
        """Is this the kit the package is installed from, the one its manifest describes?"""
        return self.root == Path(__file__).resolve().parents[2]

    def manifest(self) -> dict[str, str]:
        return dict(load_manifest()) if self.is_packaged else {}

    def exercise_names(self) -> list[str]:
        return sorted(
            p.name for p in self.exercises.iterdir() if p.is_dir() and EXERCISE_FOLDER.match(p.name)
        )


@dataclass
class Limits:
    """What one exercise's child may use; the defaults suit a CI runner."""

    wall: float = 300.0  # seconds for the whole exercise, restarts included
    test: float = 60.0  # seconds for one test
    cpu: float | None = None  # CPU seconds per process (default: the wall time)
    memory_mb: int = 2048  # resident memory of the whole process tree
    processes: int = 200  # processes in the tree
    open_files: int = 1024
    file_size_mb: int = 1024
    restarts: int = 3  # after a crash, times the exercise is resumed with the tests left
    exit_grace: float = 10.0  # seconds a child may take to exit after its last test
    collect: float = 15.0  # seconds to collect an exercise's tests (import the submission)
    short_test: float = 2.0  # seconds per test once a test of the exercise timed out
    budget: float = 30.0  # seconds of an exercise from its first test, once one of them timed out
    isolate: bool = True  # each child in its own PID namespace, when the kernel allows it

    @property
    def short_kill(self) -> float:
        """The supervisor's own limit for a test under the short limit.

        Pytest's timeout in the child (``exercise_timeout = short_test``) fails
        the test and goes on; this one kills a child whose hang a signal cannot
        interrupt.
        """
        return self.short_test + 3.0

    @property
    def address_space(self) -> int:
        # Virtual memory is far above resident memory (thread stacks, arenas):
        # the hard guard is generous, the tree's RSS is watched more tightly.
        return (self.memory_mb + 2048) * 2**20


def add_exercise_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the exercises and bound each one's time: the same for
    ``grade`` and for ``grade-all``, which passes them on to ``grade``."""
    defaults = Limits()
    parser.add_argument("--exercise", metavar="NAME", action="append", default=None,
                        help="grade only this exercise (repeatable)")
    parser.add_argument("--timeout", metavar="S", type=float, default=defaults.wall,
                        help=f"wall time of one exercise (default: {defaults.wall:g})")
    parser.add_argument("--test-timeout", metavar="S", type=float, default=defaults.test,
                        help=f"wall time of one test (default: {defaults.test:g})")
    parser.add_argument("--exercise-budget", metavar="S", type=float, default=defaults.budget,
                        help="once a test of an exercise timed out, the exercise's other tests "
                             "share what is left of S seconds from its first test, and are not run "
                             f"once it is spent; 0 for none (default: {defaults.budget:g})")


# --- what the submission holds besides its modules ----------------------------


def submission_exercises(submission: Path) -> Path:
    """A whole copy of the kit holds ``exercises/``; a copy of ``exercises/`` alone is it."""
    inner = submission / "exercises"
    return inner if inner.is_dir() else submission


def _walk(root: Path, limit: int = 20000) -> Iterable[Path]:
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            count += 1
            if count > limit:
                return
            yield Path(folder, name)


def _same_as_kit(path: Path, kit_path: Path, manifest_digest: str | None) -> bool:
    try:
        digest = file_digest(path)
    except OSError:
        return False
    if digest == manifest_digest:
        return True
    return kit_path.is_file() and digest == file_digest(kit_path)


def inspect_submission(kit: Kit, submission: Path) -> tuple[list[str], list[str]]:
    """(edited test files, ignored config files) of ``submission``, as names relative to it.

    Test files and config that are copies of the kit's own are no finding.
    """
    manifest = kit.manifest()
    exercises = submission_exercises(submission)
    edited: list[str] = []
    ignored: list[str] = []
    for path in _walk(submission):
        relative = path.relative_to(submission).as_posix()
        if path.is_relative_to(exercises) and exercise_folder(path.relative_to(exercises)):
            inside = path.relative_to(exercises)
            kit_path = kit.exercises / inside
            if is_graded_file(path) and path.name != "conftest.py":
                if not _same_as_kit(path, kit_path, manifest.get(inside.as_posix())):
                    edited.append(relative)
                continue
            if (path.name in CONFIG_FILES or path.suffix == ".pth") and not _same_as_kit(
                path, kit_path, None
            ):
                ignored.append(relative)
            continue
        if path.name in CONFIG_FILES or path.suffix == ".pth":
            kit_path = kit.root / relative
            if not _same_as_kit(path, kit_path, None):
                ignored.append(relative)
    return edited, ignored


def kit_drift(kit: Kit) -> list[str]:
    """Test files of the installed kit that differ from the shipped manifest."""
    manifest = kit.manifest()
    if not manifest:
        return []
    current = build_manifest(kit.exercises)["files"]
    return sorted(k for k in set(current) | set(manifest) if current.get(k) != manifest.get(k))


# --- the supervisor ----------------------------------------------------------

def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux), so none escape."""
    libc = load_libc()
    return bool(libc is not None and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _user_process_count() -> int:
    import psutil

    uid = os.getuid()
    count = 0
    for proc in psutil.process_iter(["uids"]):
        uids = proc.info.get("uids")
        if uids is not None and uids.real == uid:
            count += 1
    return count


def _limit_child(limits: Limits, nproc: int | None) -> Callable[[], None]:
    """The ``preexec_fn`` of a child: its resource limits, and subreaper for its tree."""
    libc = load_libc()
    cpu = int(limits.cpu if limits.cpu is not None else limits.wall) + 1

    def apply() -> None:
        def cap(which: int, value: int) -> None:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))

        cap(resource.RLIMIT_CORE, 0)
        cap(resource.RLIMIT_CPU, cpu)
        cap(resource.RLIMIT_AS, limits.address_space)
        cap(resource.RLIMIT_NOFILE, limits.open_files)
        cap(resource.RLIMIT_FSIZE, limits.file_size_mb * 2**20)
        if nproc is not None:  # counts every process of the user, and not at all for root
            cap(resource.RLIMIT_NPROC, nproc)
        if libc is not None:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    return apply


def _signal_name(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    described = {"SIGSEGV": "segmentation fault", "SIGXCPU": "CPU time limit",
                 "SIGXFSZ": "file size limit", "SIGABRT": "abort", "SIGBUS": "bus error",
                 "SIGKILL": "killed", "SIGFPE": "arithmetic error"}.get(name)
    return f"{name} ({described})" if described else name


@dataclass
class _Attempt:
    """One child process running (part of) one exercise."""

    exercise: str
    popen: subprocess.Popen[bytes]
    channel: int
    output: int
    token: str
    workdir: Path
    started: float
    tests: dict[str, TestResult]
    buffer: bytearray = field(default_factory=bytearray)
    tail: bytearray = field(default_factory=bytearray)
    current: str | None = None
    current_since: float = 0.0
    finished_tests: set[str] = field(default_factory=set)
    started_tests: int = 0
    session_finished: bool = False
    stop_reason: tuple[str, str] | None = None  # (status, why) when the supervisor stopped it
    known: dict[int, float] = field(default_factory=dict)  # pid -> create time, of its tree
    open_fds: set[int] = field(default_factory=set)
    restarts: int = 0  # how many attempts of this exercise came before this one
    finished_at: float | None = None  # when the session said it finished
    why: str = ""  # the incident that ended it, if any
    status_fd: int = -1  # the launcher's report: confinement and how the graded process ended
    launch: dict = field(default_factory=dict)  # what the launcher reported
    test_limit: float = 0.0  # seconds one test may run in this attempt
    short: bool = False  # under the short limit, after a timeout in the exercise
    session_since: float | None = None  # when pytest's session began in the child
    collected: bool = False  # the child said what it collected

    @property
    def output_tail(self) -> str:
        text = self.tail.decode("utf-8", "replace").strip()
        return text[-3000:]


OUTPUT_TAIL = 16 * 1024
MAX_LINE = 4 * 2**20


class Supervisor:
    """Grades ``submission`` exercise by exercise, each in a supervised child process."""

    def __init__(
        self,
        kit: Kit,
        submission: Path,
        limits: Limits | None = None,
        *,
        jobs: int = 1,
        exercises: Iterable[str] | None = None,
        python: str = sys.executable,
        on_progress: Callable[[str], None] | None = None,
        on_update: Callable[[GradeBook], None] | None = None,
        reap_orphans: bool = False,
    ) -> None:
        if not submission.is_dir():
            raise GradingError(f"{submission}: no such folder to grade")
        self.kit = kit
        self.submission = submission.resolve()
        self.limits = limits or Limits()
        self.jobs = max(1, jobs)
        self.only = set(exercises) if exercises is not None else None
        self.python = python
        self.progress = on_progress or (lambda message: None)
        self.on_update = on_update or (lambda book: None)
        self.reap_orphans = reap_orphans
        self.book = GradeBook()
        self.interrupted: str | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._active: list[_Attempt] = []
        self._began: dict[str, float] = {}
        self._first_test: dict[str, float] = {}  # when each exercise's first test began: the budget's clock
        self._tmp = Path(tempfile.mkdtemp(prefix="pytest-concurrency-grade-"))
        self._warned = False
        self._hanging: set[str] = set()  # exercises where a test timed out: short limits now
        self._deadlines: dict[str, float] = {}  # when each exercise's time is up

    # -- public ----------------------------------------------------------------

    def interrupt(self, reason: str) -> None:
        """Stop grading soon (safe from a signal handler): the report is still written."""
        self.interrupted = reason
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def run(self) -> GradeBook:
        try:
            self._inventory()
            self._note_submission()
            self.on_update(self.book)
            self._grade_all()
        finally:
            for attempt in list(self._active):
                self._stop(attempt, CRASHED, "grading was interrupted")
                self._finish(attempt, final=True)
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            shutil.rmtree(self._tmp, ignore_errors=True)
        return self.book

    # -- the trusted inventory -------------------------------------------------

    def _inventory(self) -> None:
        """Collect the kit's tests against its own stubs: names and points to grade."""
        names = [n for n in self.kit.exercise_names() if self.only is None or n in self.only]
        if self.only is not None:
            unknown = sorted(self.only - set(self.kit.exercise_names()))
            if unknown:
                raise GradingError(f"no such exercise in the kit: {', '.join(unknown)}")
        if not names:
            raise GradingError(f"{self.kit.exercises} holds no exercise folder (NN_name)")
        collected: list[dict] = []
        errors: list[dict] = []

        def handle(event: dict) -> None:
            if event["event"] == "collected":
                collected.extend(event["tests"])
            elif event["event"] == "collect_error":
                errors.append(event)

        paths = [str(self.kit.exercises / n) for n in names]
        attempt = self._spawn("inventory", paths, impl=None, collect_only=True)
        attempt.tests = {}
        deadline = time.monotonic() + max(120.0, self.limits.wall)
        while attempt.popen.poll() is None and time.monotonic() < deadline and not self.interrupted:
            self._pump(0.1, {attempt.channel: handle})
        self._drain(attempt, {attempt.channel: handle})
        if attempt.popen.poll() is None:
            self._kill_tree(attempt)
        self._close(attempt)
        if self.interrupted:
            raise GradingError(f"interrupted ({self.interrupted}) before grading began")
        if not collected and not errors:
            raise GradingError(
                "collecting the kit's own tests failed; pytest said:\n" + attempt.output_tail
            )
        for test in collected:
            result = TestResult(test["name"], test["exercise"], float(test["points"]),
                                self.kit.exercises / test["exercise"] / "README.md")
            self.book.results[test["nodeid"]] = result
        for error in errors:
            lines = error["message"].strip().splitlines() or ["(no message)"]
            self.book.notes.append(
                f"the kit's own tests could not be collected ({error['nodeid']}): {lines[-1]}"
            )

    def _note_submission(self) -> None:
        edited, ignored = inspect_submission(self.kit, self.submission)
        if edited:
            self.book.notes.append(
                "edited test files in the submission (ignored: the kit's own tests were run): "
                + ", ".join(edited)
            )
        if ignored:
            self.book.notes.append(
                "configuration in the submission that grading ignores: " + ", ".join(ignored)
            )
        drift = kit_drift(self.kit)
        if drift:
            self.progress(
                "warning: the installed kit's test files differ from its manifest "
                f"({', '.join(drift)}); run scripts/update-manifest if that is intended"
            )

    # -- the grading loop ------------------------------------------------------

    def _grade_all(self) -> None:
        by_exercise: dict[str, dict[str, TestResult]] = {}
        for nodeid, result in self.book.results.items():
            by_exercise.setdefault(result.exercise, {})[nodeid] = result
        queue: deque[tuple[str, int]] = deque((name, 0) for name in sorted(by_exercise))
        deadlines = self._deadlines
        last_watch = 0.0
        while (queue or self._active) and not self.interrupted:
            while queue and len(self._active) < self.jobs:
                name, restarts = queue.popleft()
                deadlines.setdefault(name, time.monotonic() + self.limits.wall)
                self._began.setdefault(name, time.monotonic())
                left = [n for n, r in by_exercise[name].items() if r.outcome == NOT_RUN]
                done = [n for n in by_exercise[name] if n not in left]
                attempt = self._spawn(name, [str(self.kit.exercises / name)], impl=self.submission,
                                      deselect=done, short=name in self._hanging,
                                      budget=self._budget_left(name, time.monotonic()))
                attempt.tests = by_exercise[name]
                attempt.restarts = restarts
                self._active.append(attempt)
            self._pump(0.1, {a.channel: self._handler(a) for a in self._active})
            now = time.monotonic()
            if now - last_watch >= 0.2:
                last_watch = now
                for attempt in self._active:
                    self._watch(attempt, now, deadlines[attempt.exercise])
                if self.reap_orphans:
                    self._reap_orphans()
            for attempt in [a for a in self._active if a.popen.poll() is not None or a.stop_reason]:
                if attempt.stop_reason and attempt.stop_reason[0] == TIMEOUT:
                    self._hangs(attempt, now)
                restart = self._finish(attempt, final=False)
                if restart and self._budget_left(attempt.exercise, now) < MIN_SHARE:
                    restart = False
                    attempt.why = self._budget_spent
                if restart and now < deadlines[attempt.exercise]:
                    queue.appendleft((attempt.exercise, attempt.restarts + 1))
                else:
                    self._give_up(attempt)
                self.on_update(self.book)
        if self.interrupted:
            for attempt in list(self._active):
                self._stop(attempt, CRASHED, f"grading was interrupted ({self.interrupted})")
                self._finish(attempt, final=True)
            for result in self.book.results.values():
                if result.outcome == NOT_RUN and not result.message:
                    result.message = f"not run: grading was interrupted ({self.interrupted})"

    def _budget_left(self, exercise: str, now: float) -> float:
        """Seconds left of the exercise's budget: all of it until one of its tests timed out."""
        if self.limits.budget <= 0:
            return math.inf
        if exercise not in self._hanging:
            return self.limits.budget
        return self._first_test.get(exercise, now) + self.limits.budget - now

    @property
    def _budget_spent(self) -> str:
        return (f"timeout: the exercise used its {self.limits.budget:g} s budget (counted from its "
                "first test) after a test timed out")

    def _hangs(self, attempt: _Attempt, now: float) -> None:
        """A test of the exercise timed out: short limits, within what is left of its budget.

        A loop or a wait that hangs one test usually hangs the next (a loop in
        ``__init__``, in a method every test calls): each of them waiting out
        the full test limit would cost minutes.
        """
        if attempt.exercise in self._hanging:
            return
        self._hanging.add(attempt.exercise)
        if attempt.exercise in self._deadlines and self.limits.budget > 0:
            # The child ends within the budget by itself; this is for a hang it cannot interrupt.
            end = max(self._first_test.get(attempt.exercise, now) + self.limits.budget, now)
            self._deadlines[attempt.exercise] = min(self._deadlines[attempt.exercise],
                                                    end + self.limits.short_kill)
        if not attempt.short:
            attempt.test_limit = min(attempt.test_limit, self.limits.short_kill)

    def _handler(self, attempt: _Attempt) -> Callable[[dict], None]:
        def handle(event: dict) -> None:
            kind = event["event"]
            nodeid = event.get("nodeid")
            if kind == "start" and nodeid in attempt.tests:
                attempt.current = nodeid
                attempt.current_since = time.monotonic()
                attempt.started_tests += 1
                self._first_test.setdefault(attempt.exercise, attempt.current_since)
            elif kind == "report" and nodeid in attempt.tests and nodeid not in attempt.finished_tests:
                record_phase(attempt.tests[nodeid], str(event["when"]), str(event["outcome"]),
                             str(event["message"]), float(event["duration"]))
                if event["outcome"] != "passed" and PYTEST_TIMEOUT in str(event["message"]):
                    # Pytest's own timeout failed it: the tests after it get the short limit.
                    self._hangs(attempt, time.monotonic())
                if event["when"] == "teardown":
                    attempt.finished_tests.add(nodeid)
                    attempt.current = None
            elif kind == "finished":
                attempt.session_finished = True
                attempt.finished_at = time.monotonic()
            elif kind == "session" and attempt.session_since is None:
                attempt.session_since = time.monotonic()
            elif kind == "collected":
                attempt.collected = True
        return handle

    def _watch(self, attempt: _Attempt, now: float, deadline: float) -> None:
        """Kill the tree of a child past one of its limits."""
        if attempt.stop_reason or attempt.popen.poll() is not None:
            return
        import psutil

        limits = self.limits
        if attempt.finished_at is not None and now - attempt.finished_at > limits.exit_grace:
            # Every test reported, but the process does not exit: a non-daemon thread?
            self.book.notes.append(
                f"{attempt.exercise}: the test process did not exit {limits.exit_grace:g} s after its last "
                "test (a thread or process left running?) and was killed; no test lost points"
            )
            self._kill_tree(attempt)
            return
        try:
            root = psutil.Process(attempt.popen.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = 0
        for proc in tree:
            try:
                attempt.known.setdefault(proc.pid, proc.create_time())
                rss += proc.memory_info().rss
            except psutil.Error:
                pass
        if len(tree) > limits.processes + LAUNCHER_PROCESSES:
            self._stop(attempt, KILLED, f"killed: it ran more than {limits.processes} processes "
                                        "at once (a fork bomb?)")
        elif rss > limits.memory_mb * 2**20:
            self._stop(attempt, KILLED, f"killed: it used more than {limits.memory_mb} MB of memory")
        elif attempt.current and now - attempt.current_since > attempt.test_limit:
            if attempt.short:
                why = (f"timeout: the test ran longer than {attempt.test_limit:g} s (the short limit "
                       "of an exercise where a test already timed out)")
            else:
                why = f"timeout: the test ran longer than {attempt.test_limit:g} s"
            self._stop(attempt, TIMEOUT, why)
        elif (not attempt.collected and attempt.session_since is not None
              and now - attempt.session_since > limits.collect):
            self._stop(attempt, TIMEOUT, f"timeout: collecting the tests did not finish in "
                                         f"{limits.collect:g} s: importing the submission's module "
                                         "hangs (a loop or a wait at module level?)")
        elif now > deadline:
            if attempt.exercise in self._hanging:
                why = self._budget_spent
            else:
                why = f"timeout: the exercise ran past its wall-time limit of {limits.wall:g} s"
            self._stop(attempt, TIMEOUT, why)

    def _stop(self, attempt: _Attempt, status: str, why: str) -> None:
        if attempt.stop_reason is None:
            attempt.stop_reason = (status, why)
        self._kill_tree(attempt)

    def _finish(self, attempt: _Attempt, final: bool) -> bool:
        """Close the attempt and score what it did; True when resuming it is worth it."""
        self._drain(attempt, {attempt.channel: self._handler(attempt)})
        self._kill_tree(attempt)
        self._close(attempt)
        if attempt in self._active:
            self._active.remove(attempt)
        verdict = self._verdict(attempt)
        if verdict is None:
            return False  # a normal end: every test reported
        status, why = verdict
        blamed = attempt.current
        if blamed is not None and blamed not in attempt.finished_tests:
            result = attempt.tests[blamed]
            result.outcome = status
            detail = attempt.output_tail
            result.message = why + (f"\n\nlast output of the test process:\n{detail}" if detail else "")
            attempt.finished_tests.add(blamed)
        self.book.incidents.setdefault(attempt.exercise, (status, why))
        attempt.why = why
        left = any(r.outcome == NOT_RUN for r in attempt.tests.values())
        progress = bool(attempt.finished_tests)
        return not final and progress and left and attempt.restarts < self.limits.restarts

    def _give_up(self, attempt: _Attempt) -> None:
        why = attempt.why
        tests = attempt.tests.values()
        for result in tests:
            if result.outcome == NOT_RUN and not result.message:
                result.message = (f"not run: {why}" if why
                                  else "not run: the test process never reached this test")
        book = self.book
        passed = sum(r.passed for r in tests)
        score = sum(r.score for r in tests)
        points = sum(r.points for r in tests)
        incident = book.incidents.get(attempt.exercise)
        suffix = f" — {incident[1]}" if incident else ""
        took = time.monotonic() - self._began.get(attempt.exercise, attempt.started)
        self.progress(f"{attempt.exercise}: {passed}/{len(attempt.tests)} tests, "
                      f"{score:g}/{points:g} points in {took:.1f} s{suffix}")

    def _verdict(self, attempt: _Attempt) -> tuple[str, str] | None:
        """(status, why) when the attempt ended before its tests did; None for a normal end."""
        missing = any(r.outcome == NOT_RUN for r in attempt.tests.values())
        if attempt.current is None and (attempt.session_finished or not missing):
            return None
        if attempt.stop_reason is not None:
            return attempt.stop_reason
        launch = attempt.launch
        if "parent_killed" in launch:
            return CRASHED, (f"crashed: the test process's parent was killed by "
                             f"{_signal_name(int(launch['parent_killed']))}, by the code under test "
                             "(os.kill(os.getppid(), ...) or os.kill(-1, ...)?); the test process "
                             "died with it")
        if "signal" in launch:
            return CRASHED, (f"crashed: the test process was killed by "
                             f"{_signal_name(int(launch['signal']))}")
        code = launch["exit"] if isinstance(launch.get("exit"), int) else attempt.popen.returncode
        if code is not None and code < 0:
            return CRASHED, (f"crashed: the test process (or its launcher) was killed by "
                             f"{_signal_name(-code)}")
        if attempt.current:
            where = "during this test"
        elif attempt.started_tests == 0:
            where = "before running any test (while importing the submission?)"
        else:
            where = "between two tests"
        return CRASHED, (f"crashed: the test process exited with status {code} {where}; "
                         "os._exit, sys.exit in a thread, or a fatal error in the code under test")

    # -- processes ---------------------------------------------------------------

    def _spawn(self, name: str, paths: list[str], impl: Path | None, collect_only: bool = False,
               deselect: list[str] | None = None, short: bool = False,
               budget: float | None = None) -> _Attempt:
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._tmp))
        read_end, write_end = os.pipe()
        out_read, out_write = os.pipe()
        token = secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST_"))}
        env.update({CHANNEL_ENV: f"{write_end}:{token}", "MALLOC_ARENA_MAX": "2",
                    "HOME": str(workdir), "TMPDIR": str(workdir)})
        if deselect:
            listed = workdir / "deselect.json"
            listed.write_text(json.dumps(deselect), encoding="utf-8")
            env[DESELECT_ENV] = str(listed)
        command = [
            self.python, "-I", "-B", "-m", "pytest", "-c", str(self.kit.config),
            "--rootdir", str(self.kit.root), "-p", "no:cacheprovider",
            "-p", "pytest_concurrency.grading.child", "-o", "tamper_check=off",
            "--basetemp", str(workdir / "basetemp"), "-q", "--no-header", "-p", "no:xdist",
        ]
        if collect_only:
            command.append("--collect-only")
        if short:
            # Pytest's own timeout fails a hung test and goes on to the next one.
            command += ["-o", f"exercise_timeout={self.limits.short_test:g}"]
        if budget is not None:
            shown = "0" if budget == math.inf else f"{max(budget, MIN_SHARE):.1f}"  # 0: no budget
            command += ["-o", f"exercise_budget={shown}"]
        if impl is not None:
            command += ["--impl", str(impl)]
        command += paths
        status_read, status_write = os.pipe()
        # The graded process's parent is the launcher's relay, in a PID namespace
        # of its own when the kernel allows it: it cannot signal the supervisor.
        command = [self.python, "-I", "-S", "-B", launcher.__file__, str(status_write),
                   "isolate" if self.limits.isolate else "share", "--", *command]
        nproc = (None if os.geteuid() == 0
                 else _user_process_count() + self.limits.processes + LAUNCHER_PROCESSES)
        try:
            popen = subprocess.Popen(
                command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out_write,
                stderr=out_write, pass_fds=(write_end, status_write), start_new_session=True,
                preexec_fn=_limit_child(self.limits, nproc),  # noqa: PLW1509 - the supervisor has no threads
            )
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(write_end)
            os.close(out_write)
            os.close(status_write)
        for fd in (read_end, out_read, status_read):
            os.set_blocking(fd, False)
        attempt = _Attempt(name, popen, read_end, out_read, token, workdir, time.monotonic(), {},
                           status_fd=status_read, short=short,
                           test_limit=self.limits.short_kill if short else self.limits.test)
        attempt.open_fds = {read_end, out_read}
        self._selector.register(read_end, selectors.EVENT_READ, attempt)
        self._selector.register(out_read, selectors.EVENT_READ, attempt)
        return attempt

    def _pump(self, timeout: float, handlers: dict[int, Callable[[dict], None]]) -> None:
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 1024)
                continue
            self._read(key.data, key.fd, handlers)

    def _read(self, attempt: _Attempt, fd: int, handlers: dict[int, Callable[[dict], None]]) -> bool:
        """Read what ``fd`` holds now; False at end of file."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self._unregister(attempt, fd)
            return False
        if fd == attempt.output:
            attempt.tail += data
            del attempt.tail[:-OUTPUT_TAIL]
            return True
        attempt.buffer += data
        *lines, rest = attempt.buffer.split(b"\n")
        attempt.buffer = bytearray(rest if len(rest) < MAX_LINE else b"")
        handle = handlers.get(fd)
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("token") == attempt.token and handle:
                handle(event)
        return True

    def _drain(self, attempt: _Attempt, handlers: dict[int, Callable[[dict], None]]) -> None:
        # A grandchild may still hold the pipes open: read what is there, never wait.
        for fd in list(attempt.open_fds):
            for _ in range(4096):
                if fd not in attempt.open_fds or not self._has_data(fd):
                    break
                if not self._read(attempt, fd, handlers):
                    break

    @staticmethod
    def _has_data(fd: int) -> bool:
        sel = selectors.DefaultSelector()
        try:
            sel.register(fd, selectors.EVENT_READ)
            return bool(sel.select(0))
        except (OSError, ValueError):
            return False
        finally:
            sel.close()

    def _unregister(self, attempt: _Attempt, fd: int) -> None:
        if fd in attempt.open_fds:
            attempt.open_fds.discard(fd)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(fd)
            os.close(fd)

    def _close(self, attempt: _Attempt) -> None:
        for fd in list(attempt.open_fds):
            self._unregister(attempt, fd)
        if attempt.status_fd >= 0:
            self._read_launch(attempt)
            os.close(attempt.status_fd)
            attempt.status_fd = -1
        shutil.rmtree(attempt.workdir, ignore_errors=True)

    def _read_launch(self, attempt: _Attempt) -> None:
        """What the launcher said: confined or not, and how the graded process ended."""
        data = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(attempt.status_fd, 4096):
                data += chunk
                if len(data) > 65536:
                    break
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    attempt.launch.update(event)
        if attempt.launch.get("confined") is False and self.limits.isolate and not self._warned:
            self._warned = True
            self.progress("note: the test processes could not get a PID namespace of their own "
                          "(not root?): they run in their own session under a launcher, but a "
                          "submission that kills every process it can signal can reach the grader")

    def _kill_tree(self, attempt: _Attempt) -> None:
        """Stop then kill every process of the attempt's tree, until none is left."""
        import psutil

        from ..hygiene.processes import is_running

        for _ in range(50):
            victims: dict[int, psutil.Process] = {}
            try:
                root = psutil.Process(attempt.popen.pid)
                for proc in [root, *root.children(recursive=True)]:
                    victims[proc.pid] = proc
            except psutil.NoSuchProcess:
                pass
            for pid, created in attempt.known.items():
                if pid in victims:
                    continue
                try:
                    proc = psutil.Process(pid)
                    if abs(proc.create_time() - created) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                        victims[pid] = proc
                except psutil.Error:
                    pass
            if self.reap_orphans:
                victims.update({p.pid: p for p in self._orphans()})
            alive = [p for p in victims.values() if is_running(p)]
            # The launcher goes last: a subreaper, it holds the orphans of the
            # processes killed before it, where the next round finds them.
            others = [p for p in alive if p.pid != attempt.popen.pid]
            if not others:
                with contextlib.suppress(OSError):
                    os.killpg(attempt.popen.pid, signal.SIGKILL)
            if not alive:
                break
            for proc in alive:  # frozen first, so that a fork bomb cannot outrun the killing
                with contextlib.suppress(psutil.Error):
                    proc.suspend()
            for proc in others or alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs([p for p in alive if p.pid != attempt.popen.pid], timeout=0.2)
            with contextlib.suppress(subprocess.TimeoutExpired):
                attempt.popen.wait(timeout=0.2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            attempt.popen.wait(timeout=5)

    def _orphans(self) -> list:
        """Our children that are no child process we started: orphans of a dead child's tree."""
        import psutil

        ours = {a.popen.pid for a in self._active}
        found = []
        try:
            for proc in psutil.Process().children():
                if proc.pid not in ours:
                    found.append(proc)
        except psutil.Error:
            pass
        return found

    def _reap_orphans(self) -> None:
        import psutil

        orphans = self._orphans()
        for proc in orphans:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if orphans:
            psutil.wait_procs(orphans, timeout=0.2)



__all__ = [
    "GradingError", "Kit", "Limits", "Supervisor", "become_subreaper", "inspect_submission",
    "kit_drift",
]
