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

A child that runs longer than ``timeout`` seconds (default 120) has the stacks
of its threads dumped and is killed with everything it started; the test
fails with that dump.  A child that crashes fails the test with its output.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ._isolated_child import CHILD_ENV, ReportWriter  # noqa: F401  (ReportWriter: re-exported)
from .impl import impl_root, module_path
from .layout import exercise_folder

ISOLATED_HELP = (
    "isolated(timeout=120): run this test in a fresh interpreter in which the exercise's "
    "module is imported first (gevent monkey patching); killed after timeout seconds"
)
DEFAULT_TIMEOUT = 120.0
# After the child's own faulthandler deadline: time for it to print the stacks and exit.
KILL_GRACE = 10.0
OUTPUT_TAIL = 6000
# Options of the parent that make no sense in a one-test child.
_NOT_FORWARDED = {"grade_json"}

_parser: pytest.Parser | None = None


def in_isolated_child() -> bool:
    """True inside the fresh interpreter that runs an isolated test."""
    return os.environ.get(CHILD_ENV) == "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    # Kept to find, at run time, the plugin's options to forward to the child.
    global _parser
    _parser = parser


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", ISOLATED_HELP)


@dataclass(frozen=True)
class IsolationSettings:
    timeout: float
    preload: tuple[str, ...] | None  # None: the exercise's modules


def settings_of(item: pytest.Item) -> IsolationSettings:
    marker = item.get_closest_marker("isolated")
    assert marker is not None
    unknown = set(marker.kwargs) - {"timeout", "preload"}
    if marker.args or unknown:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.isolated takes only timeout= and preload=, "
            f"got args={marker.args!r} kwargs={sorted(unknown)}"
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
    return IsolationSettings(float(timeout), preload)


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
            value = node.value
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
    stand_ins = _stand_ins_for(collector)
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        return (yield)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


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


# --- running in the parent --------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if in_isolated_child() or item.get_closest_marker("isolated") is None:
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    try:
        reports = IsolatedRun(item).reports()
    except (Exception, pytest.fail.Exception) as error:  # pytest-timeout's fail() lands here
        reports = [
            _report(item, "setup", "passed"),
            _report(item, "call", "failed", f"running the isolated test failed: {error!r}"),
            _report(item, "teardown", "passed"),
        ]
    parent_teardown = _tear_down_parent_state(item, nextitem)
    if parent_teardown is not None:
        reports = [r for r in reports if r.when != "teardown" or r.failed] + [parent_teardown]
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


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


def _report(item: pytest.Item, when: str, outcome: str, longrepr: str | None = None,
            sections: list[tuple[str, str]] | None = None) -> pytest.TestReport:
    now = time.time()
    return pytest.TestReport(
        nodeid=item.nodeid, location=item.location, keywords=dict.fromkeys(item.keywords, 1),
        outcome=outcome, longrepr=longrepr, when=when, sections=sections or [],
        duration=0.0, start=now, stop=now, user_properties=list(item.user_properties),
    )


class IsolatedRun:
    """One isolated test: start the child, wait for it (bounded), read its reports back."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item
        self.config = item.config
        self.settings = settings_of(item)

    def command(self, reports: Path, basetemp: Path) -> list[str]:
        names = self.settings.preload
        if names is None:
            names = exercise_modules(self.item.path)
        command = [
            sys.executable, "-m", "pytest_concurrency._isolated_child",
            "--reports", str(reports), "--timeout", str(self.settings.timeout),
        ]
        for name, path in preload_paths(self.item.path, names):
            command += ["--preload", f"{name}={path}"]
        return [*command, "--", *self.pytest_args(basetemp)]

    def pytest_args(self, basetemp: Path) -> list[str]:
        config = self.config
        args = [
            self.item.nodeid, "-q", "--no-header", "-p", "no:cacheprovider",
            f"--rootdir={config.rootpath}", f"--basetemp={basetemp}",
            f"--import-mode={config.getoption('importmode')}",
        ]
        if config.inipath is not None:
            args.append(f"--config-file={config.inipath}")
        root = impl_root()
        if root is not None:
            args.append(f"--impl={root}")
        args += _forwarded_plugin_args(config)
        args += _forwarded_concurrency_options(config)
        return args

    def reports(self) -> list[pytest.TestReport]:
        workdir = Path(tempfile.mkdtemp(prefix="pytest-isolated-"))
        try:
            reports_file = workdir / "reports.jsonl"
            outcome = self._run_child(self.command(reports_file, workdir / "tmp"))
            stacks = reports_file.with_name(reports_file.name + ".stacks")
            if stacks.exists() and stacks.stat().st_size:
                outcome.output += "\n" + stacks.read_text(encoding="utf-8", errors="replace")
            return self._assemble(list(self._read(reports_file)), outcome)
        finally:
            _remove_tree(workdir)

    def _run_child(self, command: list[str]) -> ChildOutcome:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
        env.pop("PYTEST_ADDOPTS", None)  # the parent already applied it; forwarded explicitly
        env[CHILD_ENV] = "1"
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=self.config.rootpath, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        timed_out = False
        try:
            try:
                output, _ = process.communicate(timeout=self.settings.timeout + KILL_GRACE)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process.pid)
                output, _ = process.communicate()
        finally:
            # Also when the child ended: a server or worker it started may still be alive.
            _kill_group(process.pid)
            if process.poll() is None:
                process.kill()
                process.wait()
        text = output.decode("utf-8", "replace")
        return ChildOutcome(process.returncode, text, timed_out, time.monotonic() - started)

    def _read(self, path: Path) -> Iterator[tuple[str, pytest.TestReport | pytest.CollectReport]]:
        if not path.exists():
            return
        hook = self.config.hook
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a child killed while writing it
            report = hook.pytest_report_from_serializable(config=self.config, data=entry["data"])
            if report is not None:
                yield entry["kind"], report

    def _assemble(self, entries: list[tuple[str, Any]], outcome: ChildOutcome) -> list[pytest.TestReport]:
        item = self.item
        by_phase: dict[str, pytest.TestReport] = {}
        collect_errors = []
        for kind, report in entries:
            if kind == "collect":
                collect_errors.append(report)
            elif report.nodeid == item.nodeid and report.when not in by_phase:
                report.location = item.location
                report.user_properties = list(item.user_properties)
                by_phase[report.when] = report
        problem = outcome.describe(self.settings.timeout)
        result: list[pytest.TestReport] = []
        setup = by_phase.get("setup")
        if setup is None:
            if collect_errors:
                why = "collecting it in the isolated interpreter failed:\n" + collect_errors[0].longreprtext
            else:
                why = problem or "the isolated interpreter did not run it (was it deselected there?)"
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
        """What went wrong with the child itself, or "" when it ended normally."""
        if self.timed_out or "Timeout (0:" in self.output:
            return (f"the isolated test did not finish within {timeout:g} s: the isolated "
                    f"interpreter was stopped (stacks below) and killed")
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"the isolated interpreter was killed by {name}"
        if self.returncode not in (0, 1, 5):
            return f"the isolated interpreter exited with status {self.returncode}"
        return ""


def _with_output(message: str, outcome: ChildOutcome) -> str:
    text = outcome.output.strip()
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


def _forwarded_concurrency_options(config: pytest.Config) -> list[str]:
    """The plugin's own options the parent was given (``--deadlock-timeout``, ``--memcached-bin``…)."""
    if _parser is None:
        return []
    forwarded = []
    for option in _parser.getgroup("concurrency").options:
        attrs = option.attrs()
        dest = attrs.get("dest")
        if not dest or dest in _NOT_FORWARDED or dest == "impl":
            continue
        value = config.getoption(dest, default=None)
        if value is None or value == attrs.get("default"):
            continue
        long_names = [n for n in option.names() if n.startswith("--")]
        if not long_names:
            continue
        if isinstance(value, bool):
            if value:
                forwarded.append(long_names[0])
        elif isinstance(value, (list, tuple)):
            forwarded += [f"{long_names[0]}={v}" for v in value]
        else:
            forwarded.append(f"{long_names[0]}={value}")
    return forwarded
