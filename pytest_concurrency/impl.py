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
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
import types
from pathlib import Path

import pytest

from ._config import Setting, add, path_to, read
from .errors import ImplementationError
from .layout import exercise_folder

IMPL = Setting(
    "impl", option="--impl", ini=False, metavar="DIR", parse=path_to("folder"), default=None,
    forward=False,  # an isolated test's interpreter gets the resolved folder
    help="run the exercise tests against DIR, a tree that mirrors exercises/ "
         "(a student's submission, solutions/, a deliberately broken copy); default: "
         "the modules beside the tests",
)

# Set while a pytest session is configured.  Test modules call load_impl() at
# import time, long before any fixture could hand them the config.
_impl_root: Path | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    """--impl DIR."""
    add(parser, IMPL)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve --impl once: test modules call load_impl() before any fixture exists."""
    global _impl_root
    root = read(config, IMPL)
    _impl_root = None if root is None else root.resolve()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Forget the folder: the next session in this process (pytester) starts from the default."""
    global _impl_root
    _impl_root = None


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
    where = f"{path}:{inside[-1].lineno}" if inside else str(path)
    return f"{where}: importing it raised {type(error).__name__}: {error}"


def load_impl(module: str, *, test_file: str | None = None) -> types.ModuleType:
    """Load the implementation module ``module`` of the calling exercise.

    ``test_file`` defaults to the caller's ``__file__``.  The module is
    registered in ``sys.modules`` under its plain name, and its folder is put on
    ``sys.path``, so that ``pickle`` and ``multiprocessing`` (also with the
    ``spawn`` start method) find the functions it defines.
    """
    if test_file is None:
        test_file = sys._getframe(1).f_globals.get("__file__")
        if test_file is None:
            raise ImplementationError(f"load_impl({module!r}) needs test_file= outside a module")
    path = module_path(Path(test_file).resolve().parent, module)
    if not path.is_file():
        return BrokenImplementation(module, f"{path} does not exist: nothing to test")
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location(module, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module] = loaded
    try:
        spec.loader.exec_module(loaded)
    except BaseException as error:  # a student's module may raise anything, SystemExit included
        del sys.modules[module]
        if isinstance(error, KeyboardInterrupt):
            raise
        return BrokenImplementation(module, _describe_import_error(path, error))
    return loaded
