"""``@pytest.mark.isolated``: run a test in a fresh interpreter.

``gevent.monkey.patch_all()`` rewrites ``socket``, ``threading``, ``time`` and
more for the whole interpreter, and it must run before those modules are
used.  A test that needs it is marked ``isolated``; the plugin then runs it in
a new Python process in which the exercise's module is imported first, exactly
as ``import crawler`` would, and reports its setup, call and teardown in the
parent like any other test: same table, ``--grade-json``, JUnit, ``-x``,
``--lf`` and pytest-xdist.  The parent itself is never patched::

    import pytest
    from pytest_concurrency import load_impl

    pytestmark = pytest.mark.isolated(timeout=60)   # the whole module
    crawler = load_impl("crawler")

    def test_fetch_all(website):
        ...

With a module-level ``pytestmark``, the parent does not even import the
exercise's module while collecting (it would patch the parent): ``load_impl``
returns a stand-in there, and the real module only in the child.  A single
test can be marked too, but then its module's imports happen in the parent.

One interpreter serves a whole run of isolated tests: the consecutive isolated
tests of one module (same ``preload``) are collected together in one child,
which imports the module once and runs them one by one as the parent asks,
with module and session fixtures shared as pytest would share them; each
test's reports reach the parent as soon as it ends.  Under xdist each worker
has its own child.  ``@pytest.mark.isolated(shared=False)`` gives a test an
interpreter of its own.

A test that runs longer than ``timeout`` seconds (default 120; for the first
test of a child, counted from the interpreter's start) has the stacks of its
threads dumped and its child is killed with everything it started; the test
fails with that dump.  A child that crashes fails the running test with its
exit status and output.  Either way, the tests after it get a new child.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from .._config import forwarded_options, read
from ..impl import IMPORT_TIMEOUT, impl_root, module_path
from ..layout import exercise_folder
from .child import CHILD_ENV, ReportWriter  # noqa: F401  (ReportWriter: re-exported)
from .unpatch import gevent_patched, unpatch_gevent

ISOLATED_HELP = (
    "isolated(timeout=120, shared=True): run this test in a fresh interpreter in which the "
    "exercise's module is imported first (gevent monkey patching), shared with the isolated "
    "tests after it in the same module unless shared=False; killed after timeout seconds"
)
DEFAULT_TIMEOUT = 120.0
# After the child's own faulthandler deadline: time for it to print the stacks and exit.
KILL_GRACE = 10.0
OUTPUT_TAIL = 6000

def in_isolated_child() -> bool:
    """True inside the fresh interpreter that runs an isolated test."""
    return os.environ.get(CHILD_ENV) == "1"  # our own handshake, not a setting (see _config)


def pytest_configure(config: pytest.Config) -> None:
    """Register the isolated marker, and the watch that catches tests patching the pytest process."""
    config.addinivalue_line("markers", ISOLATED_HELP)
    config.pluginmanager.register(_PhaseWatch(), "concurrency-isolation-patching")


@dataclass(frozen=True)
class IsolationSettings:
    timeout: float
    preload: tuple[str, ...] | None  # None: the exercise's modules
    shared: bool = True  # False: an interpreter of its own


def settings_of(item: pytest.Item) -> IsolationSettings:
    marker = item.get_closest_marker("isolated")
    assert marker is not None
    unknown = set(marker.kwargs) - {"timeout", "preload", "shared"}
    if marker.args or unknown:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.isolated takes only timeout=, preload= and shared=, "
            f"got args={marker.args!r} kwargs={sorted(unknown)}"
        )
    shared = marker.kwargs.get("shared", True)
    if not isinstance(shared, bool):
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.isolated(shared=...) is True or False, got {shared!r}"
        )
    timeout = marker.kwargs.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.isolated(timeout=...) must be a positive number "
            f"of seconds, got {timeout!r}"
        )
    preload = marker.kwargs.get("preload")
    if preload is not None:
        if isinstance(preload, str):
            preload = (preload,)
        preload = tuple(preload)
        if not all(isinstance(name, str) and name.isidentifier() for name in preload):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.isolated(preload=...) takes module names, got {preload!r}"
            )
    return IsolationSettings(float(timeout), preload, shared)


def exercise_modules(test_file: Path) -> list[str]:
    """The implementation modules beside an exercise's tests (``crawler`` for ``17_gevent_crawler``)."""
    folder = exercise_folder(test_file)
    if folder is None or folder != test_file.parent:
        return []
    return sorted(
        p.stem for p in folder.glob("*.py") if not p.name.startswith(("test_", "conftest", "_"))
    )


def preload_paths(test_file: Path, names: list[str] | tuple[str, ...]) -> list[tuple[str, Path]]:
    """Where each module comes from: honours ``--impl`` exactly as ``load_impl`` does."""
    folder = test_file.resolve().parent
    return [(name, module_path(folder, name)) for name in names]


# --- collection in the parent: never import a module that patches -------------------------


def module_is_isolated(source: str) -> bool:
    """True when a module-level ``pytestmark`` mentions the ``isolated`` marker."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if value is not None and any(
                isinstance(sub, ast.Attribute) and sub.attr == "isolated" for sub in ast.walk(value)
            ):
                return True
    return False


class NotInThisInterpreter(types.ModuleType):
    """Stands in, in the parent, for a module that is only imported in the isolated child."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.__file__ = str(path)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise RuntimeError(
            f"{self.__name__} is imported only in the fresh interpreter of isolated tests; "
            f"this test is not marked isolated (add @pytest.mark.isolated)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """Collect isolated test modules without importing their exercise; catch patching at import."""
    stand_ins = _stand_ins_for(collector)
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    watch = not stand_ins and isinstance(collector, pytest.Module) and not in_isolated_child()
    patched_before = watch and gevent_patched()
    try:
        return (yield)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
        if watch and not patched_before and gevent_patched():
            _caught_patching(collector.config, collector.path, f"importing {_shown(collector)}")


def _stand_ins_for(collector: pytest.Collector) -> dict[str, types.ModuleType]:
    if in_isolated_child() or not isinstance(collector, pytest.Module):
        return {}
    try:
        source = collector.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    if not module_is_isolated(source):
        return {}
    paths = preload_paths(collector.path, exercise_modules(collector.path))
    return {name: NotInThisInterpreter(name, path) for name, path in paths}


# --- monkey patching outside isolated tests ----------------------------------------------


NO_PATCHING = (
    "{what} called gevent.monkey.patch_all() (it patched: {patched}). That patches the whole "
    "pytest process, which also runs every other exercise, so this exercise must not "
    "monkey-patch: remove the patch_all() (gevent.spawn, gevent.sleep and gevent's Events "
    "need none). (A kit test that needs a patched interpreter must be marked "
    "@pytest.mark.isolated.) The patches were undone; this exercise's tests fail."
)

_patching_key = pytest.StashKey[dict[str, str]]()


def _shown(node: pytest.Item | pytest.Collector) -> str:
    try:
        return str(node.path.relative_to(node.config.rootpath))
    except ValueError:
        return str(node.path)


def _patching_key_of(path: Path) -> str:
    folder = exercise_folder(path)
    return str(folder if folder is not None else path)


def _caught_patching(config: pytest.Config, path: Path, what: str) -> str:
    """Undo the patching and remember that ``path``'s exercise did it; the message."""
    patched = unpatch_gevent()
    modules = [name for name, _ in preload_paths(path, exercise_modules(path))]
    if modules and what.startswith("importing"):
        what += f" (or {', '.join(m + '.py' for m in modules)}, which it loads)"
    message = NO_PATCHING.format(what=what, patched=", ".join(patched) or "?")
    caught = config.stash.setdefault(_patching_key, {})
    caught.setdefault(_patching_key_of(path), message)
    return message


def _watching(item: pytest.Item) -> bool:
    return not in_isolated_child() and item.get_closest_marker("isolated") is None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Instead of the test, when its exercise monkey-patched (not a wrapper: the others still run)."""
    if _watching(item):
        message = item.config.stash.get(_patching_key, {}).get(_patching_key_of(item.path))
        if message is not None:
            pytest.fail(message, pytrace=False)


class _PhaseWatch:
    """The wrappers that catch a test that patches while it runs."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Catch a fixture that monkey-patches while it sets up."""
        return (yield from _watch_phase(item, "setting up"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Catch a test that monkey-patches while it runs."""
        return (yield from _watch_phase(item, "running"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Catch a fixture that monkey-patches while it tears down."""
        return (yield from _watch_phase(item, "tearing down"))


def _watch_phase(item: pytest.Item, doing: str) -> Generator[None, Any, Any]:
    """A test that patches fails (replacing its own outcome), and so do the rest of its exercise."""
    if not _watching(item) or gevent_patched():
        return (yield)
    try:
        return (yield)
    finally:
        if gevent_patched():
            what = f"{doing} {item.nodeid}"
            message = _caught_patching(item.config, item.path, what)
            pytest.fail(message, pytrace=False)  # noqa: B012  (this failure is the one that matters)


# --- running in the parent --------------------------------------------------------------


def group_key(item: pytest.Item) -> tuple[Any, ...] | None:
    """Isolated tests with the same key may share an interpreter; None: this one may not."""
    if item.get_closest_marker("isolated") is None:
        return None
    try:
        settings = settings_of(item)
    except pytest.UsageError:
        return None
    if not settings.shared:
        return None
    return (str(item.path), settings.preload)


def batch_of(item: pytest.Item) -> list[str]:
    """The tests a new child for ``item`` collects: ``item`` and the isolated tests after it
    in the run that share its module and settings (all of them are run in one interpreter,
    unless one of them ends it)."""
    key = group_key(item)
    if key is None:
        return [item.nodeid]
    items = item.session.items
    start = next((i for i, other in enumerate(items) if other is item), None)
    if start is None:
        return [item.nodeid]
    batch = []
    for other in items[start:]:
        if group_key(other) != key:
            break
        batch.append(other.nodeid)
    return batch


class ChildKeeper:
    """The parent's one live child, if any (each xdist worker has its own).

    Not a watch over processes a test started (that is
    :mod:`pytest_concurrency.hygiene.processes`): it keeps the one interpreter
    the parent itself spawned, reuses it for the next test of the batch, and
    ends it.  That child runs in a session of its own, so ending it kills its
    process group, which also reaches what it started and orphaned.
    """

    def __init__(self) -> None:
        self.current: ChildProcess | None = None
        # Tests whose child ended before it ran any test (a hang or crash while importing the
        # student's module, or collecting): they fail at once with the same cause.
        self.stillborn: dict[str, ChildProcess] = {}

    def child_for(self, item: pytest.Item) -> ChildProcess:
        child = self.current
        if child is not None and child.can_run(item):
            return child
        self.close()
        self.current = ChildProcess(item, batch_of(item))
        return self.current

    def after(self, child: ChildProcess) -> None:
        if child.ended is not None and not child.started_tests:
            self.stillborn.update(dict.fromkeys(child.pending, child))
        if not child.alive or not child.pending_next:
            self.close()

    def close(self) -> None:
        child, self.current = self.current, None
        if child is not None:
            child.close()

    def kill(self) -> None:
        child, self.current = self.current, None
        if child is not None:
            child.kill()
            child.close()


_children_key = pytest.StashKey[ChildKeeper]()


def _children(config: pytest.Config) -> ChildKeeper:
    children = config.stash.get(_children_key, None)
    if children is None:
        children = config.stash[_children_key] = ChildKeeper()
    return children


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Run an isolated test in the fresh interpreter and report its phases as if run here."""
    if in_isolated_child() or item.get_closest_marker("isolated") is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    children = _children(item.config)
    try:
        run = IsolatedRun(item)
        stillborn = children.stillborn.pop(item.nodeid, None)
        if stillborn is not None:
            reports = run.stillborn(stillborn)
        else:
            child = children.child_for(item)
            reports = run.reports(child, nextitem)
            children.after(child)
    except (Exception, pytest.fail.Exception) as error:  # pytest-timeout's fail() lands here
        children.kill()
        reports = [
            _report(item, "setup", "passed"),
            _report(item, "call", "failed", f"running the isolated test failed: {error!r}"),
            _report(item, "teardown", "passed"),
        ]
    except BaseException:  # KeyboardInterrupt, pytest.exit(): no child outlives the parent
        children.kill()
        raise
    parent_teardown = _tear_down_parent_state(item, nextitem)
    if parent_teardown is not None:
        reports = [r for r in reports if r.when != "teardown" or r.failed] + [parent_teardown]
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close the child: with -x or -k it would wait for a test that never comes."""
    # -x, -k ... or a deselected last test: the child waits for a test that never comes.
    _children(session.config).close()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the child if the session ended before its finish."""
    _children(config).close()


def _tear_down_parent_state(item: pytest.Item, nextitem: pytest.Item | None) -> pytest.TestReport | None:
    """Tear down the parent's fixtures that ``nextitem`` does not share, as pytest would.

    The isolated item is never set up in the parent, but the module and session
    fixtures of the tests before it are, and they must end where pytest would
    end them.  Returns a report only when one of them failed to tear down.
    """
    setup_state = item.session._setupstate
    call = pytest.CallInfo.from_call(lambda: setup_state.teardown_exact(nextitem), when="teardown")
    if call.excinfo is None:
        return None
    return item.ihook.pytest_runtest_makereport(item=item, call=call)


def _report(item: pytest.Item, when: Literal["setup", "call", "teardown"],
            outcome: Literal["passed", "failed", "skipped"], longrepr: str | None = None,
            sections: list[tuple[str, str]] | None = None) -> pytest.TestReport:
    now = time.time()
    return pytest.TestReport(
        nodeid=item.nodeid, location=item.location, keywords=dict.fromkeys(item.keywords, 1),
        outcome=outcome, longrepr=longrepr, when=when, sections=sections or [],
        duration=0.0, start=now, stop=now, user_properties=list(item.user_properties),
    )


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    env.pop("PYTEST_ADDOPTS", None)  # the parent already applied it; forwarded explicitly
    env[CHILD_ENV] = "1"
    return env


class ChildProcess:
    """A fresh interpreter that collected ``nodeids`` and runs them one by one on request."""

    def __init__(self, item: pytest.Item, nodeids: list[str]) -> None:
        self.config = item.config
        self.key = group_key(item)
        self.pending = dict.fromkeys(nodeids)  # ordered set: not run yet
        self.pending_next = False  # the last test run left its fixtures up for the next one
        self.collect_errors: list[pytest.CollectReport] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="pytest-isolated-"))
        self.output_path = self.workdir / "output.txt"
        self.stacks_path = self.workdir / "stacks.txt"
        self.alive = True
        self.runs = 0
        self.started_tests = 0
        self.first = nodeids[0]
        self.ended: ChildOutcome | None = None  # how it ended while running a test
        self._buffer = b""
        settings = settings_of(item)
        names = settings.preload if settings.preload is not None else exercise_modules(item.path)
        commands_read, self._commands = os.pipe()
        self._reports, reports_write = os.pipe()
        command = [
            sys.executable, "-m", "pytest_concurrency.isolation.child",
            "--commands", str(commands_read), "--reports", str(reports_write),
            "--stacks", str(self.stacks_path), "--timeout", str(settings.timeout),
            "--import-timeout", str(read(self.config, IMPORT_TIMEOUT)),
        ]
        for name, path in preload_paths(item.path, names):
            command += ["--preload", f"{name}={path}"]
        command += ["--", *nodeids, *child_pytest_args(self.config, self.workdir / "tmp")]
        try:
            with open(self.output_path, "wb") as output:
                self.process = subprocess.Popen(
                    command, cwd=self.config.rootpath, env=_child_env(), stdin=subprocess.DEVNULL,
                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                    pass_fds=(commands_read, reports_write),
                )
        except BaseException:
            for fd in (self._commands, self._reports):
                os.close(fd)
            _remove_tree(self.workdir)
            raise
        finally:
            os.close(commands_read)
            os.close(reports_write)
        self.started = time.monotonic()

    def can_run(self, item: pytest.Item) -> bool:
        return self.alive and item.nodeid in self.pending and group_key(item) == self.key

    def run(self, item: pytest.Item, nextitem: pytest.Item | None, timeout: float) -> tuple[
            list[tuple[str, Any]], ChildOutcome | None]:
        """Run ``item``; its reports and, when the child ended meanwhile, how it ended."""
        self.pending.pop(item.nodeid, None)
        following = nextitem.nodeid if nextitem is not None and self.can_run(nextitem) else None
        self.pending_next = following is not None
        offset = self.output_path.stat().st_size if self.runs else 0  # the first: from the start
        self.runs += 1
        started = time.monotonic()
        command = {"op": "run", "nodeid": item.nodeid, "next": following, "timeout": timeout}
        entries: list[tuple[str, Any]] = []
        try:
            os.write(self._commands, (json.dumps(command) + "\n").encode())
        except OSError:
            return entries, self._ended(offset, started, timed_out=False)
        deadline = time.monotonic() + timeout + KILL_GRACE
        while True:
            message = self._receive(deadline)
            if message is None:  # the child is gone, or took too long
                timed_out = time.monotonic() >= deadline
                return entries, self._ended(offset, started, timed_out=timed_out)
            kind = message.get("kind")
            if kind == "start":
                self.started_tests += 1
                deadline = time.monotonic() + timeout + KILL_GRACE
            elif kind in ("test", "collect"):
                report = self.config.hook.pytest_report_from_serializable(
                    config=self.config, data=message["data"])
                if report is None:
                    continue
                if kind == "collect":
                    self.collect_errors.append(report)
                else:
                    entries.append((kind, report))
            elif kind in ("done", "missing") and message.get("nodeid") == item.nodeid:
                return entries, None

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        """The next message of the child; None once it exited or ``deadline`` passed."""
        while True:
            line, newline, rest = self._buffer.partition(b"\n")
            if newline:
                self._buffer = rest
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # Also polls the process: a process the test started may hold the pipe open.
            ready, _, _ = select.select([self._reports], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self._reports, 65536)
                if chunk:
                    self._buffer += chunk
                    continue
                return None
            if self.process.poll() is not None:
                # Read what it wrote just before it ended.
                ready, _, _ = select.select([self._reports], [], [], 0)
                if not ready:
                    return None

    def _ended(self, offset: int, started: float, timed_out: bool) -> ChildOutcome:
        self.kill()
        output = ""
        with contextlib.suppress(OSError), open(self.output_path, "rb") as stream:
            stream.seek(offset)
            output = stream.read().decode("utf-8", "replace")
        stacks = ""
        with contextlib.suppress(OSError):
            stacks = self.stacks_path.read_text(encoding="utf-8", errors="replace")
        if stacks.strip():
            output += "\n" + stacks
        self.ended = ChildOutcome(self.process.returncode, output, timed_out or bool(stacks.strip()),
                                  time.monotonic() - started)
        return self.ended

    def kill(self) -> None:
        """End the child with everything it started (servers, workers)."""
        self.alive = False
        _kill_group(self.process.pid)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        _kill_group(self.process.pid)

    def close(self) -> None:
        """Let the child tear down what is left and exit; then kill what it left behind."""
        if self.alive:
            with contextlib.suppress(OSError):
                os.close(self._commands)
            self._commands = -1
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=KILL_GRACE)
        self.kill()
        for fd in (self._commands, self._reports):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._commands = self._reports = -1
        _remove_tree(self.workdir)


def child_pytest_args(config: pytest.Config, basetemp: Path) -> list[str]:
    """The child's pytest arguments after its test ids: the parent's settings that matter."""
    args = [
        "-q", "--no-header", "-p", "no:cacheprovider",
        f"--rootdir={config.rootpath}", f"--basetemp={basetemp}",
        f"--import-mode={config.getoption('importmode')}",
    ]
    if config.inipath is not None:
        args.append(f"--config-file={config.inipath}")
    root = impl_root()
    if root is not None:
        args.append(f"--impl={root}")
    args += _forwarded_plugin_args(config)
    args += forwarded_options(config)  # --deadlock-timeout, --memcached-bin...
    return args


class IsolatedRun:
    """One isolated test: run it in its child (bounded), turn what came back into reports."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item
        self.config = item.config
        self.settings = settings_of(item)

    def reports(self, child: ChildProcess, nextitem: pytest.Item | None) -> list[pytest.TestReport]:
        entries, outcome = child.run(self.item, nextitem, self.settings.timeout)
        return self._assemble(entries, child.collect_errors, outcome)

    def stillborn(self, child: ChildProcess) -> list[pytest.TestReport]:
        """Reports for a test whose child ended before running any test (``child.first`` failed)."""
        assert child.ended is not None
        why = (f"not run: the isolated interpreter that was to run it ended before it ran any test, "
               f"while it imported the exercise's module or collected (see {child.first}): "
               f"{child.ended.describe(self.settings.timeout)}")
        if child.collect_errors:
            why += "\n\ncollecting in the isolated interpreter failed:\n" + child.collect_errors[0].longreprtext
        return [_report(self.item, "setup", "failed", why), _report(self.item, "teardown", "passed")]

    def _assemble(self, entries: list[tuple[str, Any]], collect_errors: list[Any],
                  outcome: ChildOutcome | None) -> list[pytest.TestReport]:
        item = self.item
        by_phase: dict[str, pytest.TestReport] = {}
        for _, report in entries:
            if report.nodeid == item.nodeid and report.when not in by_phase:
                report.location = item.location
                report.user_properties = list(item.user_properties)
                by_phase[report.when] = report
        problem = outcome.describe(self.settings.timeout) if outcome is not None else ""
        result: list[pytest.TestReport] = []
        setup = by_phase.get("setup")
        if setup is None:
            if problem:
                why = problem
            elif collect_errors:
                why = "collecting it in the isolated interpreter failed:\n" + collect_errors[0].longreprtext
            else:
                why = "the isolated interpreter did not run it (was it deselected there?)"
            result.append(_report(item, "setup", "failed", _with_output(why, outcome)))
            result.append(_report(item, "teardown", "passed"))
            return result
        result.append(setup)
        if setup.passed:
            call = by_phase.get("call")
            if call is None:
                why = problem or "the isolated interpreter ended without running the test"
                call = _report(item, "call", "failed", _with_output(why, outcome))
            result.append(call)
        teardown = by_phase.get("teardown")
        if teardown is None:
            if problem and "call" in by_phase:
                teardown = _report(item, "teardown", "failed", _with_output(
                    f"while tearing the test down, {problem}", outcome))
            else:
                teardown = _report(item, "teardown", "passed")
        result.append(teardown)
        return result


@dataclass
class ChildOutcome:
    returncode: int
    output: str
    timed_out: bool
    duration: float

    def describe(self, timeout: float) -> str:
        """Why the child ended before it finished the test."""
        if self.timed_out:
            return (f"the isolated test did not finish within {timeout:g} s: the isolated "
                    f"interpreter was stopped (stacks below) and killed")
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"the isolated interpreter was killed by {name}"
        return f"the isolated interpreter exited with status {self.returncode}"


def _with_output(message: str, outcome: ChildOutcome | None) -> str:
    text = outcome.output.strip() if outcome is not None else ""
    if not text:
        return message
    if len(text) > OUTPUT_TAIL:
        text = "…\n" + text[-OUTPUT_TAIL:]
    return f"{message}\n\n--- output of the isolated interpreter ---\n{text}"


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _forwarded_plugin_args(config: pytest.Config) -> list[str]:
    """``-p NAME`` given to the parent on the command line."""
    args = list(config.invocation_params.args)
    forwarded = []
    for i, arg in enumerate(args):
        if arg == "-p" and i + 1 < len(args):
            forwarded += ["-p", args[i + 1]]
        elif arg.startswith("-p") and len(arg) > 2:
            forwarded += ["-p", arg[2:]]
    return forwarded
