"""The implementation loader: ``--impl DIR`` and :func:`load_impl`.

Exercise tests never import the student's module by name, and never touch
``sys.path`` themselves.  They ask for it::

    from pytest_concurrency import load_impl

    thread_pool = load_impl("thread_pool")

    def test_map():
        with thread_pool.ThreadPool(2) as pool:
            assert pool.map(abs, [-1, 2]) == [1, 2]

By default the module is the one beside the test file (the stub the student
edits).  With ``--impl solutions`` it is ``solutions/07_thread_pool/thread_pool.py``:
the same tests, another tree that mirrors ``exercises/``.

A module that is missing or does not import does not stop collection: the
loader returns a stand-in whose every attribute raises
:class:`~pytest_concurrency.errors.ImplementationError` with one clear line, so
that exercise scores 0 and every other exercise still runs.

The student's module is imported under guard, since code at its top level runs
right then, in the pytest process:

- a time limit (``--import-timeout``, 10 s): a loop or a sleep at the top of
  the module is interrupted, and the exercise is broken: "importing
  thread_pool.py did not finish in 10 s; it was running line 3: `while True:`";
- ``os._exit()`` and ``sys.exit()`` end the import, not the run;
- threads, processes and greenlets it starts are recorded for the exercise
  (:mod:`pytest_concurrency.hygiene.at_import`): its first test fails naming them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

import pytest

from ._config import Setting, add, path_to, read, read_env, seconds
from ._frames import first_user_frame, source_line, where
from .errors import ImplementationError
from .layout import exercise_folder, exercise_name

IMPL = Setting(
    "impl", option="--impl", ini=False, metavar="DIR", parse=path_to("folder"), default=None,
    forward=False,  # an isolated test's interpreter gets the resolved folder
    help="run the exercise tests against DIR, a tree that mirrors exercises/ "
         "(a student's submission, solutions/, a deliberately broken copy); default: "
         "the modules beside the tests",
)

IMPORT_TIMEOUT = Setting(
    "import_timeout", option="--import-timeout", metavar="S", parse=seconds, default=10.0,
    shown_default="10", env="PYTEST_CONCURRENCY_IMPORT_TIMEOUT",
    help="importing a student's module may take S seconds; past that it is interrupted and "
         "its exercise is broken (0: no limit)",
)
# Once the limit has passed, the interruption is repeated this often (the module may catch it).
REPEAT_INTERRUPT = 0.5

# Set while a pytest session is configured.  Test modules call load_impl() at
# import time, long before any fixture could hand them the config.
_impl_root: Path | None = None


_import_timeout: float | None = None  # None: read the environment (no session)
# Modules that could not be loaded, by path: a second test file of the exercise gets the
# same stand-in at once, without waiting out the import limit again.
_broken: dict[Path, BrokenImplementation] = {}
# An isolated test's interpreter: modules whose preload ran past the limit, and the one line.
_preloads_timed_out: dict[Path, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    """--impl DIR, --import-timeout S."""
    add(parser, IMPL, IMPORT_TIMEOUT)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve --impl and the import limit once: test modules call load_impl() before any fixture exists."""
    global _impl_root, _import_timeout
    root = read(config, IMPL)
    _impl_root = None if root is None else root.resolve()
    _import_timeout = read(config, IMPORT_TIMEOUT)
    _broken.clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Forget the folder: the next session in this process (pytester) starts from the default."""
    global _impl_root, _import_timeout
    _impl_root = None
    _import_timeout = None
    _broken.clear()


def impl_root() -> Path | None:
    """The ``--impl`` folder of the running session, or None for the default."""
    return _impl_root


def module_path(test_folder: Path, module: str, root: Path | None = None) -> Path:
    """Where ``module`` of the exercise in ``test_folder`` is taken from."""
    root = _impl_root if root is None else root
    if root is None:
        return test_folder / f"{module}.py"
    folder = exercise_folder(test_folder)
    name = folder.name if folder else test_folder.name
    # Accept a whole copy of the kit as well as a copy of exercises/ alone.
    for candidate in (root / name, root / "exercises" / name):
        if candidate.is_dir():
            return candidate / f"{module}.py"
    return root / name / f"{module}.py"


class BrokenImplementation(types.ModuleType):
    """Stands in for a module that could not be loaded; every use says why."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name)
        self.__problem__ = problem

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise ImplementationError(self.__problem__)


def _describe_import_error(path: Path, error: BaseException) -> str:
    if isinstance(error, SyntaxError):
        where = f"{path}:{error.lineno}" if error.lineno else str(path)
        line = (error.text or "").rstrip()
        detail = f"\n    {line}" if line else ""
        return f"{where}: SyntaxError: {error.msg}{detail}"
    frames = traceback.extract_tb(error.__traceback__)
    inside = [f for f in frames if Path(f.filename) == path]
    if isinstance(error, SystemExit):
        lineno = inside[-1].lineno if inside else None
        return f"importing {path.name} called sys.exit({error.code!r}){_at_line(str(path), lineno)}; {_MOVE_IT}"
    where = f"{path}:{inside[-1].lineno}" if inside else str(path)
    return f"{where}: importing it raised {type(error).__name__}: {error}"


_MOVE_IT = 'code at module level runs when the module is imported: move it under `if __name__ == "__main__":`'


def _quoted(filename: str, line: int) -> str:
    source = source_line(filename, line)
    return f": `{source}`" if source else ""


def _at_line(filename: str, line: int | None) -> str:
    """`` at line 3: `os._exit(0)` ``, or nothing when the line is not known."""
    return "" if line is None else f" at line {line}{_quoted(filename, line)}"


def _running(frame: FrameType | None, path: Path) -> str:
    """Where the import was when it was interrupted: the innermost line of the student's file."""
    inner = frame
    while inner is not None and inner.f_code.co_filename != str(path):
        inner = inner.f_back
    if inner is not None:
        return f"it was running line {inner.f_lineno}{_quoted(str(path), inner.f_lineno)}"
    user = first_user_frame(frame)
    if user is None:
        return "it was not running Python code of its own"
    filename = user.f_code.co_filename
    return f"it was running {where(filename, user.f_lineno)}{_quoted(filename, user.f_lineno)}"


class _ImportInterrupted(BaseException):
    """Raised into a student's module that imports for too long, or calls ``os._exit``.

    A ``BaseException``, so that an ``except Exception`` in the module does not swallow it.
    """


class _ImportGuard:
    """One import of a student's module: under a time limit, ``os._exit`` refused."""

    def __init__(self, path: Path, limit: float) -> None:
        self.path = path
        self.limit = limit
        self.problem: str | None = None  # set once the import went wrong: the one line
        self.pid = os.getpid()

    def _timed_out(self, frame: FrameType | None) -> None:
        if self.problem is None:
            self.problem = (
                f"importing {self.path.name} did not finish in {self.limit:g} s; "
                f"{_running(frame, self.path)}"
            )

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        self._timed_out(frame)
        raise _ImportInterrupted(self.problem)

    @contextlib.contextmanager
    def _time_limit(self) -> Iterator[None]:
        if self.limit <= 0:
            yield
            return
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            with self._alarm():
                yield
        else:
            with self._watcher():
                yield

    @contextlib.contextmanager
    def _alarm(self) -> Iterator[None]:
        """SIGALRM interrupts loops and sleeps alike; the previous handler and timer come back after."""
        previous = signal.signal(signal.SIGALRM, self._on_alarm)
        previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, self.limit, REPEAT_INTERRUPT)
        began = time.monotonic()
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
            if previous_delay > 0:  # pytest-timeout's, say: it goes on, less the import's time
                left = max(previous_delay - (time.monotonic() - began), 0.001)
                signal.setitimer(signal.ITIMER_REAL, left, previous_interval)

    @contextlib.contextmanager
    def _watcher(self) -> Iterator[None]:
        """Not the main thread, or no SIGALRM: a thread raises into the import (loops, not sleeps)."""
        ident = threading.get_ident()
        done = threading.Event()

        def watch() -> None:
            if done.wait(self.limit):
                return
            self._timed_out(sys._current_frames().get(ident))
            import ctypes

            while not done.is_set():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(_ImportInterrupted)
                )
                done.wait(REPEAT_INTERRUPT)

        watcher = threading.Thread(target=watch, name="pytest-concurrency import limit", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()

    @contextlib.contextmanager
    def _exit_refused(self) -> Iterator[None]:
        """``os._exit`` would end pytest at once, with no report: it raises instead."""
        real = os._exit

        def _exit(code: int) -> NoReturn:
            if os.getpid() != self.pid:  # a process the module forked ends as it asked
                real(code)
            caller = sys._getframe(1)
            line = caller.f_lineno if caller.f_code.co_filename == str(self.path) else None
            if self.problem is None:
                self.problem = (
                    f"importing {self.path.name} called os._exit({code!r})"
                    f"{_at_line(str(self.path), line)}; {_MOVE_IT}"
                )
            raise _ImportInterrupted(self.problem)

        os._exit = _exit  # type: ignore[assignment]
        try:
            yield
        finally:
            if os._exit is _exit:
                os._exit = real

    @contextlib.contextmanager
    def guarding(self) -> Iterator[None]:
        with self._exit_refused(), self._time_limit():
            yield


def preload_timed_out(path: str | Path, limit: float, frame: FrameType | None) -> None:
    """The preload of an isolated test's interpreter ran past ``limit``: ``load_impl`` reports the
    module broken, in the words of its own limit, without importing it again."""
    guard = _ImportGuard(Path(path).resolve(), limit)
    guard._timed_out(frame)
    assert guard.problem is not None
    _preloads_timed_out[guard.path] = guard.problem


def _import_limit() -> float:
    return read_env(IMPORT_TIMEOUT) if _import_timeout is None else _import_timeout


def load_impl(module: str, *, test_file: str | None = None) -> types.ModuleType:
    """Load the implementation module ``module`` of the calling exercise.

    ``test_file`` defaults to the caller's ``__file__``.  The module is
    registered in ``sys.modules`` under its plain name, and its folder is put on
    ``sys.path``, so that ``pickle`` and ``multiprocessing`` (also with the
    ``spawn`` start method) find the functions it defines.  It is imported under
    the guard the module docstring describes.
    """
    if test_file is None:
        test_file = sys._getframe(1).f_globals.get("__file__")
        if test_file is None:
            raise ImplementationError(f"load_impl({module!r}) needs test_file= outside a module")
    test_folder = Path(test_file).resolve().parent
    path = module_path(test_folder, module)
    if not path.is_file():
        return BrokenImplementation(module, f"{path} does not exist: nothing to test")
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    if path in _broken:
        return _broken[path]
    if path in _preloads_timed_out:
        return BrokenImplementation(module, _preloads_timed_out[path])
    spec = importlib.util.spec_from_file_location(module, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module] = loaded
    from .hygiene.at_import import recording

    guard = _ImportGuard(path, _import_limit())
    problem: str | None = None
    with recording(path, exercise_name(test_folder)) as record:
        try:
            with guard.guarding():
                spec.loader.exec_module(loaded)
        except BaseException as error:  # a student's module may raise anything, SystemExit included
            if isinstance(error, KeyboardInterrupt):
                del sys.modules[module]
                raise
            problem = guard.problem or _describe_import_error(path, error)
        else:
            problem = guard.problem  # past the limit, even if the module caught the interruption
        if os.getpid() != guard.pid:  # the module called os.fork(): this copy of pytest ends here
            os._exit(0)
        record.broken = problem is not None
    if problem is None:
        return loaded
    sys.modules.pop(module, None)
    broken = _broken[path] = BrokenImplementation(module, problem)
    return broken
