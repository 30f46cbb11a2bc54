"""The package's shape: the folders of architecture.md, no import cycle, a light import,
doctests that run, and every part can be left out by its name (old names too)."""

from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_concurrency
from pytest_concurrency.plugin import PARTS

PACKAGE = Path(pytest_concurrency.__file__).parent
NAME = "pytest_concurrency"

# ../shared/spec/architecture.md: the top level holds these modules and folders only.
TOP_LEVEL_MODULES = {
    "__init__", "__main__", "plugin", "errors", "impl", "layout", "testing", "_config", "_frames",
}
FOLDERS = {"scheduler", "deadlock", "hygiene", "isolation", "fixtures", "grading", "linearizability"}


def module_name(path: Path) -> str:
    parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_top_level_is_the_folders_of_the_architecture():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert modules <= TOP_LEVEL_MODULES, f"top-level modules not in architecture.md: {modules - TOP_LEVEL_MODULES}"
    assert folders == FOLDERS
    for folder in FOLDERS:
        assert (PACKAGE / folder / "__init__.py").is_file(), f"{folder}/ is not a package"


def imports_of(name: str, path: Path) -> set[str]:
    """Every package module ``name`` imports, at the top or inside a function (not under
    TYPE_CHECKING): an import put inside a function to dodge a cycle still counts."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    source = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    source = child.module or ""
                for alias in child.names:
                    submodule = f"{source}.{alias.name}"
                    found.add(submodule if submodule in MODULES else source)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            visit(child)

    visit(tree)
    return {module for module in found if module in MODULES and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_back():
    # A package's __init__ is run before any of its modules; it is not an edge back.
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_module_imports_alone_in_a_fresh_interpreter():
    program = (
        "import importlib, subprocess, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    done = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True, text=True)\n"
        "    if done.returncode:\n"
        "        failed.append(f'{name}: {done.stderr.strip().splitlines()[-1]}')\n"
        "print('\\n'.join(failed))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, *MODULES], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", done.stdout


def test_importing_the_package_loads_neither_hypothesis_nor_the_scheduler():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_concurrency"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "pytest_concurrency" in loaded
    heavy = sorted(
        name for name in loaded
        if name.split(".")[0] in ("hypothesis", "pytest", "_pytest", "gevent", "psutil")
        or name.startswith("pytest_concurrency.scheduler")
    )
    assert not heavy, f"import pytest_concurrency loaded {heavy}"


def test_public_names_load_on_first_use():
    program = (
        "import sys, types, pytest_concurrency as pc\n"
        "assert 'pytest_concurrency.scheduler' not in sys.modules\n"
        "from pytest_concurrency import schedules, Schedule, explore_all, Exploration, load_impl\n"
        "from pytest_concurrency import DeadlockError, LivelockError, ConcurrencyError\n"
        "assert isinstance(pc.schedules, types.FunctionType) and pc.schedules is schedules\n"
        "assert set(pc.__all__) <= set(dir(pc))\n"
        "try:\n"
        "    pc.nothing_here\n"
        "except AttributeError as error:\n"
        "    assert 'nothing_here' in str(error)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def doctests_of(name: str) -> list[doctest.DocTest]:
    return [test for test in doctest.DocTestFinder().find(importlib.import_module(name)) if test.examples]


WITH_DOCTESTS = [name for name, path in MODULES.items() if ">>>" in path.read_text(encoding="utf-8")]


def test_modules_with_examples_are_found():
    assert len(WITH_DOCTESTS) >= 10, WITH_DOCTESTS


@pytest.mark.parametrize("name", WITH_DOCTESTS)
def test_doctests(name):
    tests = doctests_of(name)
    assert tests, f"{name} shows >>> examples that doctest does not find"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    output: list[str] = []
    for test in tests:
        runner.run(test, out=output.append)
    results = runner.summarize(verbose=False)
    skipped = sum(len(test.examples) for test in tests) - results.attempted
    assert results.failed == 0, "".join(output)
    assert skipped == 0, f"{name}: {skipped} example(s) skipped: run them, or make them plain code"


@pytest.mark.parametrize("part, old_names", PARTS, ids=[name for name, _ in PARTS])
def test_every_part_can_be_left_out_by_its_name_and_its_old_name(pytester, part, old_names):
    for name in (part, *old_names):
        config = pytester.parseconfig("-p", f"no:{name}")
        try:
            assert not config.pluginmanager.has_plugin(part), f"-p no:{name} left {part} in"
            others = [other for other, _ in PARTS if other != part]
            assert all(config.pluginmanager.has_plugin(other) for other in others)
        finally:
            config._ensure_unconfigure()


def test_every_hook_says_why_it_is_there():
    missing = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.FunctionDef)
                and node.name.startswith("pytest_")
                and not ast.get_docstring(node)
            ):
                missing.append(f"{name}.{node.name} (line {node.lineno})")
    assert not missing, "hook functions without a one-line docstring:\n" + "\n".join(missing)
